# Sent when the office accepts a case for review for prosecution.
name: rights_notice_suspect
family: rights_notice
lane: urgent
required: name, case_no, accepted_on, office, office_phone
max_parts: 4
description: 犯罪嫌疑人、被告人诉讼权利义务告知（受理审查起诉后）
---
{{name}}：您好。{{office}}已于{{accepted_on}}受理{{case_no}}案件审查起诉。依照《中华人民共和国刑事诉讼法》规定，您有权委托辩护人，经济困难的可申请法律援助；有权申请回避；对侵犯您诉讼权利的行为，有权申诉或控告；自愿如实供述、认罪认罚的，可依法从宽处理。您应当如实回答提问。详询{{office_phone}}。

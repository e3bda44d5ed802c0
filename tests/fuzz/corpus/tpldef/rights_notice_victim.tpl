# Sent to the victim (or the victim's close relative) of an accepted case.
name: rights_notice_victim
family: rights_notice
lane: urgent
required: name, case_no, accepted_on, office, office_phone
max_parts: 4
description: 被害人诉讼权利义务告知（受理审查起诉后）
---
{{name}}：您好。{{office}}已于{{accepted_on}}受理{{case_no}}案件审查起诉。依照《中华人民共和国刑事诉讼法》规定，您作为被害人，有权委托诉讼代理人，经济困难的可申请法律援助；有权申请回避，有权就案件处理提出意见；因犯罪行为遭受物质损失的，有权提起附带民事诉讼。您应当如实陈述案件事实。详询{{office_phone}}。

# Sent to a party's defender or agent ad litem; client_name is the party.
name: rights_notice_agent
family: rights_notice
lane: urgent
required: name, client_name, case_no, accepted_on, office, office_phone
max_parts: 4
description: 辩护人、诉讼代理人权利告知（受理审查起诉后）
---
{{name}}：您好。{{office}}已于{{accepted_on}}受理{{case_no}}案件审查起诉，您系{{client_name}}的辩护人或诉讼代理人。依照《中华人民共和国刑事诉讼法》规定，您可以查阅、摘抄、复制本案案卷材料，可以向{{office}}提出书面意见。请持执业证书、授权委托书等材料到案件管理部门办理。详询{{office_phone}}。

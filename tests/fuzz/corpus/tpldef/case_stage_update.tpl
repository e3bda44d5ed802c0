# Sent when a case moves to a new stage or its time limit changes.
name: case_stage_update
family: case_stage
lane: urgent
required: name, case_no, stage, stage_date, office_phone
optional: deadline
max_parts: 3
description: 案件所处环节及办理期限变更告知
---
{{name}}：您好。您关注的{{case_no}}案件已于{{stage_date}}进入{{stage}}环节。{{#deadline}}该环节办理期限至{{deadline}}。{{/deadline}}案件办理进展可登录12309中国检察网查询，或致电{{office_phone}}咨询。

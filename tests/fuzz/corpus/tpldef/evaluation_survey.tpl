# The monthly evaluation text (the 23rd). Replies are parsed by the gateway:
# four digits in the order below, optionally followed by a suggestion.
name: evaluation_survey
family: survey
lane: bulk
required: period
optional: name
max_parts: 3
description: 执法评议短信（每月23日批量发送）
---
{{#name}}{{name}}：{{/name}}您好！诚邀您对本院{{period}}办案工作进行评议。请按执法程序、执法能力、执法文明、廉洁执法的顺序，每项回复一个数字：1满意，2基本满意，3不满意（如回复“1121”），数字后可附意见建议。感谢您的监督与支持！

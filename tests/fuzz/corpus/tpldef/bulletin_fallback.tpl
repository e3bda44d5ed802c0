# SMS stand-in for a bulletin issue when the recipient cannot take MMS.
name: bulletin_fallback
family: bulletin
lane: bulk
required: title, issue_no, link
max_parts: 3
description: 手机报彩信无法送达时的短信提示
---
您好！本院《{{title}}》第{{issue_no}}期已发布，因您的手机暂不能接收彩信，特以短信告知。阅读全文请访问：{{link}}

"""The pages' words in English and Chinese: one table, read by the templates and (as JSON in
each page) by the scripts. A missing translation falls back to English; the language comes from
``?lang=`` (remembered in the ``fp_lang`` cookie) or the browser's ``Accept-Language``."""

from __future__ import annotations

from fastapi import Request

LANGUAGES = ("en", "zh")
LANG_COOKIE = "fp_lang"

_WORDS: dict[str, tuple[str, str]] = {
    "wallet": ("Wallet", "钱包"),
    "pos": ("Merchant POS", "商户收银台"),
    "console": ("Operator console", "运营控制台"),
    "language": ("中文", "English"),
    "phone": ("Phone number", "手机号"),
    "password": ("Password", "密码"),
    "name": ("Real name", "姓名"),
    "id_number": ("ID number", "身份证号"),
    "pin": ("Payment PIN (6 digits)", "支付密码（6位）"),
    "login": ("Log in", "登录"),
    "logout": ("Log out", "退出"),
    "register": ("Register", "注册"),
    "new_here": ("New here? Register", "新用户？注册"),
    "have_account": ("Have an account? Log in", "已有账户？登录"),
    "session_expired": ("Your session expired: please log in again.", "会话已过期，请重新登录。"),
    "cards": ("Cards", "银行卡"),
    "bind_card": ("Bind a card", "绑定银行卡"),
    "card_number": ("Card number", "卡号"),
    "expiry": ("Expiry (MM/YY)", "有效期（MM/YY）"),
    "cvv": ("CVV (credit cards)", "CVV（信用卡）"),
    "send_otp": ("Send the code", "发送验证码"),
    "otp": ("One-time code", "短信验证码"),
    "confirm": ("Confirm", "确认"),
    "dev_otp": (
        "Development only: the SMS is not sent; read the code on the development notifier's page",
        "仅限开发环境：短信不会发出，请在开发通知页面查看验证码",
    ),
    "balance": ("Balance", "余额"),
    "credit_limit": ("Credit limit", "信用额度"),
    "available": ("Available", "可用"),
    "outstanding": ("Outstanding", "已用"),
    "default": ("default", "默认"),
    "home": ("Home", "首页"),
    "pay": ("Pay", "付款"),
    "scan": ("Scan", "扫一扫"),
    "transfer": ("Transfer", "转账"),
    "discounts": ("Discounts", "优惠"),
    "history": ("History", "账单"),
    "limits": ("Limits", "限额"),
    "pay_code_hint": (
        "Show this to the cashier. It refreshes by itself.",
        "向收银员出示付款码，会自动刷新。",
    ),
    "refreshes_in": ("refreshes in", "刷新倒计时"),
    "paid_at": ("Paid ¥{amount} at {merchant}", "已在{merchant}支付 ¥{amount}"),
    "camera": ("Use the camera", "使用摄像头"),
    "upload": ("Upload a picture of the code", "上传付款码图片"),
    "paste": ("…or paste the code", "……或粘贴二维码内容"),
    "read_code": ("Read the code", "识别"),
    "merchant": ("Merchant", "商户"),
    "amount": ("Amount (¥)", "金额（元）"),
    "discount": ("Discount", "优惠"),
    "to_pay": ("To pay", "实付"),
    "no_discount": ("No discount applies", "无可用优惠"),
    "original_amount": ("Original amount", "原价"),
    "you_paid": ("You paid", "实付"),
    "campaign": ("Campaign", "活动"),
    "funded_by": ("funded by", "出资方"),
    "funder_issuer": ("the card's bank", "发卡行"),
    "funder_network": ("the network", "清算网络"),
    "funder_acquirer": ("the acquirer", "收单机构"),
    "funder_merchant": ("the merchant", "商户"),
    "pay_now": ("Pay", "立即支付"),
    "result_ok": ("Paid ✓", "支付成功 ✓"),
    "declined": ("Declined", "交易失败"),
    "to_phone": ("To phone number", "收款人手机号"),
    "to_card": ("…or to card number", "……或收款卡号"),
    "memo": ("Memo", "备注"),
    "send": ("Send", "转账"),
    "sent": ("Sent ✓", "转账成功 ✓"),
    "theme_month": ("This month's discounts by scene", "本月主题优惠（按场景）"),
    "applies": ("applies to your card", "适用于您的卡"),
    "not_applicable": ("not for your cards", "您的卡不适用"),
    "receipt": ("Receipt", "电子凭证"),
    "voucher": ("Voucher", "凭证号"),
    "verified": ("Verified in the audit log ✓", "已在审计日志中验证 ✓"),
    "verifying": ("Verifying in the audit log…", "正在审计日志中验证……"),
    "not_yet_logged": (
        "Not yet in a co-signed checkpoint of the audit log",
        "尚未进入审计日志的联署检查点",
    ),
    "verify_failed": ("Audit log verification FAILED", "审计日志验证失败"),
    "receipt_refused": ("This receipt is not yours or does not exist.", "该凭证不存在或不属于您。"),
    "free_per_payment": ("Password-free per payment (¥)", "免密支付单笔限额（元）"),
    "qr_daily_limit": ("QR daily limit (¥)", "扫码每日限额（元）"),
    "save": ("Save", "保存"),
    "saved": ("Saved ✓", "已保存 ✓"),
    "api_key": ("API key", "API 密钥"),
    "new_order": ("New order", "新订单"),
    "terminal": ("Terminal", "终端"),
    "create_order": ("Show the QR", "生成收款码"),
    "waiting": ("Waiting for the customer…", "等待顾客付款……"),
    "order_paid": ("Paid ✓", "已收款 ✓"),
    "collect": ("Collect with the customer's code", "扫顾客付款码收款"),
    "customer_code": ("Customer's code (19 digits or QR)", "顾客付款码（19位数字或二维码）"),
    "charge": ("Charge", "收款"),
    "today": ("Today's payments", "今日收款"),
    "totals": ("Totals by terminal", "按终端汇总"),
    "refund": ("Refund", "退款"),
    "refunded": ("Refunded", "已退款"),
    "status": ("Status", "状态"),
    "per_second": ("Payments per second (last minute)", "每秒交易数（最近一分钟）"),
    "declines": ("Declines by reason", "拒绝原因"),
    "positions": ("Institutions and net positions", "机构与净头寸"),
    "net": ("Net", "净额"),
    "income": ("Income", "收入"),
    "checkpoints": ("Audit log checkpoints", "审计日志检查点"),
    "cosignatures": ("Witness co-signatures", "见证方联署"),
    "size": ("Size", "大小"),
    "final": ("final", "已确认"),
    "pending": ("pending", "待确认"),
    "none": ("none", "无"),
    "error": ("Something went wrong", "出错了"),
    "scene_supermarket": ("Supermarkets", "超市"),
    "scene_convenience_store": ("Convenience stores", "便利店"),
    "scene_campus": ("Campus", "校园"),
    "scene_canteen": ("Canteens", "食堂"),
    "scene_bus": ("Buses", "公交"),
    "scene_subway": ("Subway", "地铁"),
    "scene_food_market": ("Food markets", "菜市场"),
    "scene_parking": ("Parking", "停车"),
    "scene_hospital": ("Hospitals", "医院"),
    "scene_vending": ("Vending machines", "自助售货"),
}


def language(request: Request) -> str:
    asked = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)
    if asked in LANGUAGES:
        return asked
    accept = request.headers.get("accept-language", "").lower()
    return "zh" if accept.startswith("zh") else "en"


def words(lang: str) -> dict[str, str]:
    column = LANGUAGES.index(lang) if lang in LANGUAGES else 0
    return {key: pair[column] or pair[0] for key, pair in _WORDS.items()}

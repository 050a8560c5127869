"""The wallet's limits and formats, in one place: what a phone, ID number, password and PIN look
like, how long a session or a one-time code lives, and the payment limits the payments domain
enforces for a wallet.

Amounts are fen (integer minor units). The payment limits follow the People's Bank of China
barcode payment rules (2018): password-free payments up to a threshold the user sets (at most
¥1,000 a day in all), with the PIN up to ¥5,000 a day unless the user agreed another limit,
static codes at most ¥500 a day.
"""

from __future__ import annotations

import re

CARDS_MAX = 15  # bound cards per wallet
YUAN = 100
FREE_PER_PAYMENT_DEFAULT = 1_000 * YUAN
FREE_DAILY_MAX = 1_000 * YUAN
QR_DAILY_DEFAULT = 5_000 * YUAN
QR_DAILY_MAX = 50_000 * YUAN
STATIC_DAILY_MAX = 500 * YUAN
PIN_TRIES_MAX = 5
PIN_LOCK_SECONDS = 30 * 60
SESSION_SECONDS = 24 * 3600
OTP_SECONDS = 5 * 60
OTP_TRIES_MAX = 5
PASSWORD_CHARS_MIN = 8
PASSWORD_CHARS_MAX = 128
TOKEN_PREFIX = "fps_"
PHONE = re.compile(r"^1[3-9][0-9]{9}$")  # mainland China mobile numbers
ID_NUMBER = re.compile(r"^[0-9]{17}[0-9X]$")  # resident identity card, 18 characters
PIN = re.compile(r"^[0-9]{6}$")

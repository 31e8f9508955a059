"""Seeded demo data with known truth: users, behaviour events and transactions.

The generator simulates a small online shop, fully vectorised with NumPy (no per-user Python
loops), and writes it to the landing area in the layout the ingest assets read. Because every
customer's purchase and spend process is drawn from known population distributions, the CLV
models can be checked by parameter recovery, and the lifecycle marts by the per-user truth.

Model of the data (time unit = days, clock = days since ``start_date`` 00:00 UTC):

* **Sign-ups** over ``[start_date, end_date]`` with a linear growth trend
  (density proportional to ``1 + signup_growth * t / n_days``). Users are numbered in sign-up
  order, so a referrer (drawn among earlier users, favouring recent ones) always signed up
  before the referee, and emits a ``referral_invite`` shortly before the referee's sign-up.
* **Conversion**: a share of users per channel are *buyers*; the others are *prospects* that
  never buy. A buyer's first order comes an exponential delay after sign-up (possibly after
  ``end_date``: no order yet).
* **Purchases** from the first order on follow the BG/NBD process exactly (Fader, Hardie & Lee
  2005): ``lambda ~ Gamma(shape=r, rate=alpha)``, ``p ~ Beta(a, b)``; repeat purchases arrive as a
  Poisson process with rate ``lambda`` per day while the customer is active; after each *repeat*
  purchase the customer drops out with probability ``p`` (never right after the first one, so
  P(alive) = 1 for a customer without repeat purchases, as in the model's likelihood).
* **Spend** follows the Gamma-Gamma model (Fader, Hardie & Lee 2005, "RFM and CLV"):
  ``nu ~ Gamma(shape=q, rate=gamma)`` per customer and each order value
  ``~ Gamma(shape=p, rate=nu)``, rounded to cents.
* **On top of** that process (not part of it): a share of orders gets a *cancelled* attempt
  shortly before it, and a share of completed orders is refunded (fully or partly) 1-14 days
  later, if that falls inside the window.
* **Behaviour**: every order (completed or cancelled) is preceded in the same session by
  ``session_start``, ``product_view`` (one or more), ``add_to_cart`` and ``checkout``. Users also
  browse in sessions (``session_start`` and a geometric number of page/product views a few
  minutes apart) as a Poisson process with a per-user rate while *engaged*: a customer until
  dropout plus a short tail (until the end if alive), a buyer until the end, a prospect for an
  exponential span. A share of lapsed users comes back later for a burst of sessions
  (reactivations). Users with the app emit ``app_heartbeat`` events (the technical,
  non-qualifying type) at a low rate from sign-up to the end, also while not engaged.

Every random draw comes from ``np.random.default_rng(config.seed)`` (split with ``spawn`` into
one stream per component, so that changing a behavioural knob does not reshuffle the purchase
process). The same config gives identical frames and byte-identical landing files with the same
library versions.

References
----------
Fader, P. S., Hardie, B. G. S., & Lee, K. L. (2005). "Counting your customers" the easy way:
    an alternative to the Pareto/NBD model. Marketing Science, 24(2), 275-284.
Fader, P. S., Hardie, B. G. S., & Lee, K. L. (2005). RFM and CLV: using iso-value curves for
    customer base analysis. Journal of Marketing Research, 42(4), 415-430.
Fader, P. S., & Hardie, B. G. S. (2013). The Gamma-Gamma model of monetary value.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

GENERATOR_VERSION = 1

SOURCES = ("users", "events", "transactions")
CHANNELS = ("organic", "paid", "social", "referral")
EVENT_TYPES = (
    "session_start",
    "page_view",
    "product_view",
    "add_to_cart",
    "checkout",
    "referral_invite",
    "app_heartbeat",
)
#: Purely technical event types: they do not make a user active.
TECHNICAL_EVENT_TYPES = ("app_heartbeat",)
TRANSACTION_TYPES = ("order", "refund")
TRANSACTION_STATUSES = ("completed", "cancelled")
CURRENCY = "USD"

_SESSION_START, _PAGE_VIEW, _PRODUCT_VIEW, _ADD_TO_CART, _CHECKOUT, _REFERRAL_INVITE, _APP_HEARTBEAT = range(
    len(EVENT_TYPES)
)
_ORGANIC, _REFERRAL = CHANNELS.index("organic"), CHANNELS.index("referral")

_DAY_S = 86_400
_US_PER_S = 1_000_000
_EPOCH = datetime.date(1970, 1, 1)

# Fixed-width ids sort like their numbers.
_USER_ID_WIDTH, _EVENT_ID_WIDTH, _TRANSACTION_ID_WIDTH, _ORDER_ID_WIDTH = 8, 12, 10, 10

_TS = pa.timestamp("us")
# ASCII digits of 0000..9999, one row per number.
_DIGITS4 = (ord("0") + np.arange(10_000)[:, None] // np.array([1000, 100, 10, 1]) % 10).astype(np.uint8)


def _required(name: str, type_: pa.DataType) -> pa.Field:
    return pa.field(name, type_, nullable=False)


#: Landing schemas (exact column order and Arrow types of the Parquet files).
SCHEMAS: dict[str, pa.Schema] = {
    "users": pa.schema(
        [
            _required("user_id", pa.string()),
            _required("signup_at", _TS),
            _required("channel", pa.string()),
            pa.field("referrer_user_id", pa.string()),
            _required("country", pa.string()),
        ]
    ),
    "events": pa.schema(
        [
            _required("event_id", pa.string()),
            _required("user_id", pa.string()),
            _required("event_type", pa.string()),
            _required("occurred_at", _TS),
        ]
    ),
    "transactions": pa.schema(
        [
            _required("transaction_id", pa.string()),
            _required("order_id", pa.string()),
            _required("user_id", pa.string()),
            _required("transaction_type", pa.string()),
            _required("status", pa.string()),
            _required("amount", pa.float64()),
            _required("currency", pa.string()),
            _required("occurred_at", _TS),
        ]
    ),
}

#: Schema of ``_truth/user_truth.parquet`` (one row per user).
USER_TRUTH_SCHEMA = pa.schema(
    [
        _required("user_id", pa.string()),
        _required("signup_at", _TS),
        _required("channel", pa.string()),
        _required("is_buyer", pa.bool_()),
        _required("is_customer", pa.bool_()),
        pa.field("first_order_at", _TS),
        pa.field("purchase_rate", pa.float64()),
        pa.field("dropout_prob", pa.float64()),
        pa.field("spend_nu", pa.float64()),
        pa.field("expected_order_value", pa.float64()),
        _required("n_repeat_purchases", pa.int64()),
        pa.field("dropped_out_at", _TS),
        pa.field("is_alive_at_end", pa.bool_()),
        _required("engaged_until_at", _TS),
        pa.field("reactivated_at", _TS),
        _required("session_rate", pa.float64()),
        _required("has_app", pa.bool_()),
    ]
)

_TIME_COLUMN = {"users": "signup_at", "events": "occurred_at", "transactions": "occurred_at"}
_ID_COLUMN = {"users": "user_id", "events": "event_id", "transactions": "transaction_id"}
_DICTIONARY_COLUMNS = frozenset(
    {"channel", "country", "user_id", "event_type", "transaction_type", "status", "currency"}
)


@dataclass(frozen=True)
class GeneratorConfig:
    """Parameters of a generated demo dataset.

    The population parameters are the truth that the CLV models should recover, with time in
    days: BG/NBD ``lambda ~ Gamma(shape=bgnbd_r, rate=bgnbd_alpha)``,
    ``p ~ Beta(bgnbd_a, bgnbd_b)``; Gamma-Gamma ``nu ~ Gamma(shape=gg_q, rate=gg_gamma)`` and
    order value ``~ Gamma(shape=gg_p, rate=nu)`` (mean ``gg_p * gg_gamma / (gg_q - 1)`` = 30 USD
    with the defaults). The other fields are behavioural knobs; shares are given as
    ``((name, share), ...)`` pairs so the config stays immutable and hashable.
    """

    seed: int = 42
    n_users: int = 2_000
    n_days: int = 180
    start_date: datetime.date = datetime.date(2026, 1, 1)
    # True population parameters, time unit = days.
    bgnbd_r: float = 0.25
    bgnbd_alpha: float = 8.0
    bgnbd_a: float = 0.8
    bgnbd_b: float = 2.5
    gg_p: float = 6.0
    gg_q: float = 4.0
    gg_gamma: float = 15.0
    # Acquisition.
    signup_growth: float = 1.0  # sign-up rate on the last day is (1 + growth) x the first day's
    channel_shares: tuple[tuple[str, float], ...] = (
        ("organic", 0.45),
        ("paid", 0.25),
        ("social", 0.15),
        ("referral", 0.15),
    )
    country_shares: tuple[tuple[str, float], ...] = (
        ("US", 0.40),
        ("GB", 0.15),
        ("DE", 0.12),
        ("FR", 0.10),
        ("CA", 0.10),
        ("IN", 0.08),
        ("BR", 0.05),
    )
    referrer_recency_mean_days: float = 30.0  # referrers are drawn among earlier, mostly recent users
    invite_lead_mean_hours: float = 12.0  # referral_invite this long (exponential) before the sign-up
    # Conversion and orders.
    conversion_shares: tuple[tuple[str, float], ...] = (
        ("organic", 0.40),
        ("paid", 0.30),
        ("social", 0.25),
        ("referral", 0.55),
    )
    first_order_delay_mean_days: float = 7.0
    cancel_rate: float = 0.03  # share of completed orders preceded by a cancelled attempt
    cancel_lead_mean_hours: float = 24.0
    refund_rate: float = 0.05  # share of completed orders refunded (if the refund falls in the window)
    full_refund_share: float = 0.70
    refund_min_delay_days: float = 1.0
    refund_max_delay_days: float = 14.0
    # Browsing behaviour.
    session_rate_mean_per_day: float = 0.15  # per-user rate ~ Gamma(shape, mean) while engaged
    session_rate_shape: float = 1.0
    views_per_session_mean: float = 2.5  # geometric, at least one view
    product_view_share: float = 0.5  # share of browsing views that are product views
    funnel_product_views_mean: float = 2.0  # product views before add_to_cart (geometric, >= 1)
    event_gap_mean_minutes: float = 2.0
    customer_engagement_tail_mean_days: float = 10.0  # engagement after dropout
    prospect_engagement_mean_days: float = 21.0
    reactivation_share: float = 0.20  # share of lapsed users that come back for a burst
    reactivation_min_gap_days: float = 35.0
    reactivation_gap_mean_days: float = 30.0  # extra gap, exponential
    reactivation_sessions_mean: float = 4.0
    reactivation_span_days: float = 10.0
    app_user_share: float = 0.30
    heartbeat_rate_per_day: float = 0.1

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not 1 <= self.n_users < 10**_USER_ID_WIDTH:
            problems.append(f"n_users must be in [1, {10**_USER_ID_WIDTH - 1}], got {self.n_users}")
        if self.n_days < 1:
            problems.append(f"n_days must be >= 1, got {self.n_days}")
        positive = (
            "bgnbd_r", "bgnbd_alpha", "bgnbd_a", "bgnbd_b", "gg_p", "gg_q", "gg_gamma",
            "referrer_recency_mean_days", "invite_lead_mean_hours", "first_order_delay_mean_days",
            "cancel_lead_mean_hours", "refund_min_delay_days", "session_rate_mean_per_day",
            "session_rate_shape", "views_per_session_mean", "funnel_product_views_mean",
            "event_gap_mean_minutes", "customer_engagement_tail_mean_days", "prospect_engagement_mean_days",
            "reactivation_gap_mean_days", "reactivation_span_days", "heartbeat_rate_per_day",
        )  # fmt: skip
        shares = (
            "cancel_rate", "refund_rate", "full_refund_share", "product_view_share", "reactivation_share",
            "app_user_share",
        )  # fmt: skip
        problems += [f"{k} must be > 0, got {getattr(self, k)}" for k in positive if not getattr(self, k) > 0]
        problems += [
            f"{k} must be in [0, 1], got {getattr(self, k)}" for k in shares if not 0 <= getattr(self, k) <= 1
        ]
        if not self.signup_growth > -1:
            problems.append(f"signup_growth must be > -1, got {self.signup_growth}")
        if not self.refund_max_delay_days >= self.refund_min_delay_days:
            problems.append("refund_max_delay_days must be >= refund_min_delay_days")
        if self.reactivation_min_gap_days < 0 or self.reactivation_sessions_mean < 1:
            problems.append("reactivation_min_gap_days must be >= 0 and reactivation_sessions_mean >= 1")
        if self.views_per_session_mean < 1 or self.funnel_product_views_mean < 1:
            problems.append("views_per_session_mean and funnel_product_views_mean must be >= 1")
        for name in ("channel_shares", "conversion_shares"):
            keys = [k for k, _ in getattr(self, name)]
            if sorted(keys) != sorted(CHANNELS):
                problems.append(f"{name} must name each of {CHANNELS} once, got {keys}")
        for name in ("channel_shares", "country_shares"):
            values = [v for _, v in getattr(self, name)]
            if min(values, default=-1) < 0 or abs(sum(values) - 1) > 1e-9:
                problems.append(f"{name} must be non-negative and sum to 1, got {values}")
        if any(not 0 <= v <= 1 for _, v in self.conversion_shares):
            problems.append("conversion_shares must lie in [0, 1]")
        if any(not re.fullmatch(r"[A-Z]{2}", code) for code, _ in self.country_shares):
            problems.append("country_shares keys must be ISO 3166-1 alpha-2 codes")
        if problems:
            raise ValueError("Invalid GeneratorConfig: " + "; ".join(problems))

    @property
    def end_date(self) -> datetime.date:
        """The last generated day (the demo's as-of date): ``start_date + n_days - 1``."""
        return self.start_date + datetime.timedelta(days=self.n_days - 1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict of every field (dates as ISO strings, share pairs as dicts)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, datetime.date):
                value = value.isoformat()
            elif isinstance(value, tuple):
                value = {k: v for k, v in value}
            out[f.name] = value
        return out


@dataclass
class GeneratedDataset:
    """The generated landing frames and the per-user truth behind them.

    ``users``, ``events`` and ``transactions`` follow the landing contract (see ``SCHEMAS``):
    strings as pandas ``str``, timestamps as tz-naive ``datetime64[us]`` meaning UTC, rows sorted
    by time then id. ``user_truth`` has one row per user (see ``USER_TRUTH_SCHEMA``):
    ``purchase_rate`` (lambda per day), ``dropout_prob`` (p), ``spend_nu`` and
    ``expected_order_value`` (gg_p / nu) are set for buyers and NaN for prospects;
    ``first_order_at`` is NaT if no order happened in the window; ``dropped_out_at`` is the time
    of the repeat purchase after which the customer dropped out, NaT if alive at the end (or never
    a customer); ``is_alive_at_end`` is null for non-customers; ``reactivated_at`` is the first
    session of a come-back burst.
    """

    config: GeneratorConfig
    users: pd.DataFrame
    events: pd.DataFrame
    transactions: pd.DataFrame
    user_truth: pd.DataFrame

    def truth(self) -> dict[str, Any]:
        """The config as a JSON-able dict, the true parameters and the row counts."""
        c = self.config
        ut, tx = self.user_truth, self.transactions
        is_order = tx["transaction_type"] == "order"
        return {
            "generator": "models_py.generator",
            "generator_version": GENERATOR_VERSION,
            "config": c.to_dict(),
            "start_date": c.start_date.isoformat(),
            "end_date": c.end_date.isoformat(),
            "as_of_date": c.end_date.isoformat(),
            "time_unit": "days",
            "bgnbd": {"r": c.bgnbd_r, "alpha": c.bgnbd_alpha, "a": c.bgnbd_a, "b": c.bgnbd_b},
            "gamma_gamma": {"p": c.gg_p, "q": c.gg_q, "gamma": c.gg_gamma},
            "row_counts": {"users": len(self.users), "events": len(self.events), "transactions": len(tx)},
            "counts": {
                "buyers": int(ut["is_buyer"].sum()),
                "customers": int(ut["is_customer"].sum()),
                "repeat_customers": int((ut["n_repeat_purchases"] > 0).sum()),
                "dropped_out_customers": int(ut["dropped_out_at"].notna().sum()),
                "reactivated_users": int(ut["reactivated_at"].notna().sum()),
                "referred_users": int(self.users["referrer_user_id"].notna().sum()),
                "completed_orders": int((is_order & (tx["status"] == "completed")).sum()),
                "cancelled_orders": int((is_order & (tx["status"] == "cancelled")).sum()),
                "refunds": int((tx["transaction_type"] == "refund").sum()),
            },
        }


# ---------------------------------------------------------------------------------------------
# Vectorised helpers


def _group_positions(counts: np.ndarray) -> np.ndarray:
    """Position of each element within its group, for groups laid out back to back."""
    starts = np.cumsum(counts) - counts
    return np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(starts, counts)


def _group_cumsum(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Inclusive cumulative sum restarting at each group."""
    total = np.cumsum(values)
    starts = np.cumsum(counts) - counts
    before = np.concatenate((np.zeros(1, dtype=total.dtype), total))[starts]
    return total - np.repeat(before, counts)


def _gaps_s(rng: np.random.Generator, size: int, mean_minutes: float) -> np.ndarray:
    """Whole-second gaps between consecutive events of a session (at least 5 s)."""
    return 5 + np.floor(rng.exponential(mean_minutes * 60.0, size)).astype(np.int64)


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """Fixed-width ids ``<prefix><zero-padded number>``, built directly as Arrow buffers.

    Returns ``large_string`` (the storage of pandas' ``str`` dtype, so ``to_pandas`` does not copy).
    """
    numbers = np.asarray(numbers, dtype=np.int64)
    if numbers.size and (numbers.min() < 0 or numbers.max() >= 10**width):
        raise ValueError(f"ids {prefix}...: numbers must fit {width} digits")
    row = len(prefix) + width
    chars = np.empty((numbers.size, row), dtype=np.uint8)
    chars[:, : len(prefix)] = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    rest, col = numbers, row
    while col > len(prefix):  # four digits per (slow) int64 division, via a lookup table
        k = min(4, col - len(prefix))
        rest, group = np.divmod(rest, 10**k)
        chars[:, col - k : col] = _DIGITS4[group, 4 - k :]
        col -= k
    offsets = np.arange(0, (numbers.size + 1) * row, row, dtype=np.int64)
    return pa.LargeStringArray.from_buffers(numbers.size, pa.py_buffer(offsets), pa.py_buffer(chars))


def _labels(values: tuple[str, ...], codes: np.ndarray) -> pa.Array:
    """``values[codes]`` as a ``large_string`` array."""
    return pc.take(pa.array(values, type=pa.large_string()), pa.array(codes))


def _in_memory(schema: pa.Schema) -> pa.Schema:
    """The landing schema with ``large_string`` for ``string``: what pandas' ``str`` dtype holds."""
    return pa.schema([f.with_type(pa.large_string()) if f.type == pa.string() else f for f in schema])


def _stable_order(keys: np.ndarray) -> np.ndarray:
    """``np.argsort(keys, kind="stable")`` for non-negative int64 keys, several times faster.

    Sorts ``key << bits | position`` (unique values, so any sort is stable) and reads the
    positions back from the low bits.
    """
    n = keys.size
    bits = max(int(n).bit_length(), 1)
    if n == 0 or keys.min() < 0 or int(keys.max()) >= 1 << (62 - bits):
        return np.argsort(keys, kind="stable")
    packed = np.sort((keys.astype(np.int64) << bits) | np.arange(n, dtype=np.int64))
    return packed & ((1 << bits) - 1)


def _shares(pairs: tuple[tuple[str, float], ...], order: tuple[str, ...]) -> np.ndarray:
    lookup = dict(pairs)
    return np.array([lookup[k] for k in order], dtype=np.float64)


@dataclass
class _Events:
    """Event rows under construction: user index, whole seconds since the start, type code."""

    user: np.ndarray
    sec: np.ndarray
    kind: np.ndarray


def _sessions(
    rng: np.random.Generator, user: np.ndarray, start_s: np.ndarray, config: GeneratorConfig
) -> _Events:
    """Browsing sessions: session_start, then a geometric number of page/product views."""
    n_views = rng.geometric(1.0 / config.views_per_session_mean, user.size)
    per = 1 + n_views
    gaps = _gaps_s(rng, int(per.sum()), config.event_gap_mean_minutes)
    offset = _group_cumsum(gaps, per) - gaps  # exclusive: the first event is at the start
    pos = _group_positions(per)
    kind = np.where(rng.random(pos.size) < config.product_view_share, _PRODUCT_VIEW, _PAGE_VIEW).astype(
        np.int8
    )
    kind[pos == 0] = _SESSION_START
    return _Events(np.repeat(user.astype(np.int32), per), np.repeat(start_s, per) + offset, kind)


def _funnels(
    rng: np.random.Generator,
    user: np.ndarray,
    order_s: np.ndarray,
    floor_s: np.ndarray,
    config: GeneratorConfig,
) -> _Events:
    """Order sessions ending a few minutes before each order.

    session_start, product_view x k (k >= 1), add_to_cart, checkout; the gap after the checkout
    is the lead time to the order. Times are clipped to ``floor_s`` (the user's sign-up).
    """
    per = 3 + rng.geometric(1.0 / config.funnel_product_views_mean, user.size)
    gaps = _gaps_s(rng, int(per.sum()), config.event_gap_mean_minutes)
    inclusive = _group_cumsum(gaps, per)
    total = np.repeat(inclusive[np.cumsum(per) - 1], per)
    offset = inclusive - gaps
    sec = np.maximum(np.repeat(order_s, per) - total + offset, np.repeat(floor_s, per))
    pos = _group_positions(per)
    last = np.repeat(per, per) - 1
    kind = np.full(pos.size, _PRODUCT_VIEW, dtype=np.int8)
    kind[pos == 0] = _SESSION_START
    kind[pos == last - 1] = _ADD_TO_CART
    kind[pos == last] = _CHECKOUT
    return _Events(np.repeat(user.astype(np.int32), per), sec, kind)


def _poisson_times(
    rng: np.random.Generator, rate: np.ndarray, begin: np.ndarray, end: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Homogeneous Poisson process per user on ``[begin, end)`` (days): (user index, times)."""
    span = np.maximum(end - begin, 0.0)
    counts = rng.poisson(rate * span)
    user = np.repeat(np.arange(rate.size), counts)
    return user, begin[user] + rng.random(user.size) * span[user]


def _merge_events(parts: list[_Events], end_s: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Concatenate event parts (emptying the list), drop events after the window, sort by time.

    The sort is stable: ties keep generation order, so a session's events keep their order.
    """
    user = np.concatenate([p.user for p in parts])
    kind = np.concatenate([p.kind for p in parts])
    sec = np.concatenate([p.sec for p in parts])
    parts.clear()
    inside = sec < end_s  # sessions near the end of the window are cut off
    if not inside.all():
        user, sec, kind = user[inside], sec[inside], kind[inside]
    del inside
    order = _stable_order(sec)
    return user[order], sec[order], kind[order]


# ---------------------------------------------------------------------------------------------
# Generation


def generate(config: GeneratorConfig) -> GeneratedDataset:
    """Generate users, events, transactions and the per-user truth for ``config``.

    Parameters
    ----------
    config : GeneratorConfig
        Size, window, true parameters and behavioural knobs.

    Returns
    -------
    GeneratedDataset
        Landing frames sorted by time then id, and the truth behind them.
    """
    n, n_days = config.n_users, config.n_days
    end_s = n_days * _DAY_S
    (rng_users, rng_referrals, rng_purchases, rng_orders, rng_sessions, rng_funnels, rng_heartbeats) = (
        np.random.default_rng(config.seed).spawn(7)
    )

    # --- Users, in sign-up order -------------------------------------------------------------
    u = rng_users.random(n)
    g = config.signup_growth
    # Inverse CDF of the density (1 + g x) / (1 + g / 2) on [0, 1).
    x = u if abs(g) < 1e-12 else (np.sqrt(1.0 + 2.0 * g * (1.0 + g / 2.0) * u) - 1.0) / g
    signup_s = np.minimum(np.sort(np.floor(x * end_s).astype(np.int64)), end_s - 1)
    signup_t = signup_s / _DAY_S
    channel = rng_users.choice(len(CHANNELS), size=n, p=_shares(config.channel_shares, CHANNELS))
    countries = tuple(code for code, _ in config.country_shares)
    country = rng_users.choice(len(countries), size=n, p=_shares(config.country_shares, countries))

    # --- Referrals: a referrer signed up strictly earlier, mostly recently -------------------
    referee = np.flatnonzero(channel == _REFERRAL)
    n_earlier = np.searchsorted(signup_s, signup_s[referee], side="left")
    channel[referee[n_earlier == 0]] = _ORGANIC  # nobody to refer the very first users
    referee, n_earlier = referee[n_earlier > 0], n_earlier[n_earlier > 0]
    lookback = np.floor(rng_referrals.exponential(config.referrer_recency_mean_days * _DAY_S, referee.size))
    target = signup_s[referee] - lookback.astype(np.int64)
    referrer = np.clip(np.searchsorted(signup_s, target, side="right") - 1, 0, n_earlier - 1)
    lead = 60 + np.floor(rng_referrals.exponential(config.invite_lead_mean_hours * 3600, referee.size))
    invite_s = np.maximum(signup_s[referee] - lead.astype(np.int64), signup_s[referrer])
    referrer_of = np.full(n, -1, dtype=np.int64)
    referrer_of[referee] = referrer

    # --- Purchases: first order, then BG/NBD -------------------------------------------------
    conversion = _shares(config.conversion_shares, CHANNELS)[channel]
    is_buyer = rng_purchases.random(n) < conversion
    lam = rng_purchases.gamma(config.bgnbd_r, 1.0 / config.bgnbd_alpha, n)
    p_drop = rng_purchases.beta(config.bgnbd_a, config.bgnbd_b, n)
    nu = rng_purchases.gamma(config.gg_q, 1.0 / config.gg_gamma, n)
    first_t = signup_t + rng_purchases.exponential(config.first_order_delay_mean_days, n)
    is_customer = is_buyer & (first_t < n_days)
    cust = np.flatnonzero(is_customer)
    horizon = n_days - first_t[cust]
    # K = repeat purchases until dropout (drop after the K-th, never after the first order);
    # N = arrivals of the Poisson process within the window; observed repeats = min(K, N).
    k_drop = rng_purchases.geometric(np.clip(p_drop[cust], 1e-12, 1.0))
    n_arrivals = rng_purchases.poisson(lam[cust] * horizon)
    n_repeat = np.minimum(k_drop, n_arrivals)
    dropped = k_drop <= n_arrivals
    # The first m of N sorted uniforms on [0, H] are H * (E_1 + .. + E_j) / (E_1 + .. + E_{N+1})
    # for j <= m with E_i ~ Exp(1); the sum of the last N + 1 - m terms is Gamma(N + 1 - m).
    spacing = rng_purchases.standard_exponential(int(n_repeat.sum()))
    partial = _group_cumsum(spacing, n_repeat)
    rest = rng_purchases.standard_gamma((n_arrivals - n_repeat + 1).astype(np.float64))
    has_repeat = n_repeat > 0
    denom = rest.copy()
    denom[has_repeat] += partial[np.cumsum(n_repeat)[has_repeat] - 1]
    repeat_t = np.repeat(first_t[cust], n_repeat) + np.repeat(horizon / denom, n_repeat) * partial

    order_user = np.concatenate((cust, np.repeat(cust, n_repeat)))
    order_t = np.concatenate((first_t[cust], repeat_t))
    order_s = np.clip(np.floor(order_t * _DAY_S).astype(np.int64), signup_s[order_user], end_s - 1)
    order_value = np.maximum(np.round(rng_purchases.gamma(config.gg_p, 1.0 / nu[order_user]), 2), 0.01)
    first_order_s = np.full(n, -1, dtype=np.int64)
    first_order_s[cust] = order_s[: cust.size]
    dropout_s = np.full(n, -1, dtype=np.int64)
    last_repeat = cust.size + np.cumsum(n_repeat) - 1  # index of each customer's last repeat order
    dropout_s[cust[dropped]] = order_s[last_repeat[dropped]]
    repeats_of = np.zeros(n, dtype=np.int64)
    repeats_of[cust] = n_repeat

    # --- Cancelled attempts and refunds, on top of the purchase process ----------------------
    n_completed = order_s.size
    with_cancel = np.flatnonzero(rng_orders.random(n_completed) < config.cancel_rate)
    cancel_lead = 600 + np.floor(
        rng_orders.exponential(config.cancel_lead_mean_hours * 3600, with_cancel.size)
    )
    cancel_s = order_s[with_cancel] - cancel_lead.astype(np.int64)
    cancel_user = order_user[with_cancel]
    cancel_value = np.maximum(np.round(rng_orders.gamma(config.gg_p, 1.0 / nu[cancel_user]), 2), 0.01)
    keep = cancel_s >= signup_s[cancel_user]
    cancel_s, cancel_user, cancel_value = cancel_s[keep], cancel_user[keep], cancel_value[keep]

    refunded = np.flatnonzero(rng_orders.random(n_completed) < config.refund_rate)
    refund_delay = rng_orders.uniform(
        config.refund_min_delay_days, config.refund_max_delay_days, refunded.size
    )
    refund_s = order_s[refunded] + np.floor(refund_delay * _DAY_S).astype(np.int64)
    is_full = rng_orders.random(refunded.size) < config.full_refund_share
    fraction = rng_orders.uniform(0.1, 0.9, refunded.size)
    paid = order_value[refunded]
    refund_value = np.where(is_full, paid, np.clip(np.round(paid * fraction, 2), 0.01, paid))
    keep = refund_s < end_s  # later refunds have not happened yet on the as-of date
    refunded, refund_s, refund_value = refunded[keep], refund_s[keep], refund_value[keep]

    # Orders (completed then cancelled) numbered in time order; a refund carries its order's id.
    all_order_s = np.concatenate((order_s, cancel_s))
    order_rank = np.empty(all_order_s.size, dtype=np.int64)
    order_rank[_stable_order(all_order_s)] = np.arange(all_order_s.size)
    tx_order = np.concatenate((order_rank, order_rank[refunded]))
    tx_user = np.concatenate((order_user, cancel_user, order_user[refunded]))
    tx_s = np.concatenate((all_order_s, refund_s))
    tx_amount = np.concatenate((order_value, cancel_value, refund_value))
    tx_is_refund = np.repeat([False, False, True], [n_completed, cancel_s.size, refunded.size])
    tx_is_cancelled = np.repeat([False, True, False], [n_completed, cancel_s.size, refunded.size])

    # --- Engagement, browsing sessions and reactivations -------------------------------------
    prospect_until = signup_t + rng_sessions.exponential(config.prospect_engagement_mean_days, n)
    tail = rng_sessions.exponential(config.customer_engagement_tail_mean_days, n)
    engaged_until = np.where(is_buyer, float(n_days), prospect_until)
    has_dropped = dropout_s >= 0
    engaged_until[has_dropped] = dropout_s[has_dropped] / _DAY_S + tail[has_dropped]
    engaged_until = np.minimum(engaged_until, float(n_days))
    scale = config.session_rate_mean_per_day / config.session_rate_shape
    session_rate = rng_sessions.gamma(config.session_rate_shape, scale, n)
    browse_user, browse_t = _poisson_times(rng_sessions, session_rate, signup_t, engaged_until)

    return_t = (
        engaged_until
        + config.reactivation_min_gap_days
        + rng_sessions.exponential(config.reactivation_gap_mean_days, n)
    )
    comes_back = (engaged_until < n_days) & (rng_sessions.random(n) < config.reactivation_share)
    comes_back &= return_t < n_days
    burst = np.where(comes_back, 1 + rng_sessions.poisson(config.reactivation_sessions_mean - 1.0, n), 0)
    burst_user = np.repeat(np.arange(n), burst)
    burst_t = return_t[burst_user] + np.where(
        _group_positions(burst) == 0,
        0.0,
        rng_sessions.random(burst_user.size) * config.reactivation_span_days,
    )

    session_user = np.concatenate((np.arange(n), browse_user, burst_user))
    session_s = np.concatenate(
        (signup_s, np.floor(browse_t * _DAY_S).astype(np.int64), np.floor(burst_t * _DAY_S).astype(np.int64))
    )
    events = [_sessions(rng_sessions, session_user, session_s, config)]

    # --- Order funnels, referral invites, heartbeats ------------------------------------------
    funnel_user = np.concatenate((order_user, cancel_user))
    events.append(_funnels(rng_funnels, funnel_user, all_order_s, signup_s[funnel_user], config))
    events.append(
        _Events(referrer.astype(np.int32), invite_s, np.full(referee.size, _REFERRAL_INVITE, dtype=np.int8))
    )
    has_app = rng_heartbeats.random(n) < config.app_user_share
    hb_user, hb_t = _poisson_times(
        rng_heartbeats,
        np.where(has_app, config.heartbeat_rate_per_day, 0.0),
        signup_t,
        np.full(n, float(n_days)),
    )
    events.append(
        _Events(
            hb_user.astype(np.int32),
            np.maximum(np.floor(hb_t * _DAY_S).astype(np.int64), signup_s[hb_user]),
            np.full(hb_user.size, _APP_HEARTBEAT, dtype=np.int8),
        )
    )
    ev_user, ev_s, ev_kind = _merge_events(events, end_s)
    tx_sort = _stable_order(tx_s)

    # --- Frames ------------------------------------------------------------------------------
    start_us = (config.start_date - _EPOCH).days * _DAY_S * _US_PER_S

    def ts(sec: np.ndarray) -> np.ndarray:
        return (start_us + sec.astype(np.int64) * _US_PER_S).view("datetime64[us]")

    def ts_or_nat(sec: np.ndarray) -> np.ndarray:
        out = ts(np.where(sec >= 0, sec, 0))
        out[sec < 0] = np.datetime64("NaT")
        return out

    user_ids = _ids("u", np.arange(1, n + 1), _USER_ID_WIDTH)
    channel_names = _labels(CHANNELS, channel)
    users = pa.table(
        {
            "user_id": user_ids,
            "signup_at": pa.array(ts(signup_s), type=_TS),
            "channel": channel_names,
            "referrer_user_id": pc.take(user_ids, pa.array(referrer_of, mask=referrer_of < 0)),
            "country": _labels(countries, country),
        },
        schema=_in_memory(SCHEMAS["users"]),
    )
    events_frame = pa.table(
        {
            "event_id": _ids("e", np.arange(1, ev_s.size + 1), _EVENT_ID_WIDTH),
            "user_id": pc.take(user_ids, pa.array(ev_user)),
            "event_type": _labels(EVENT_TYPES, ev_kind),
            "occurred_at": pa.array(ts(ev_s), type=_TS),
        },
        schema=_in_memory(SCHEMAS["events"]),
    ).to_pandas()
    del ev_user, ev_s, ev_kind  # the largest arrays: free them before the smaller frames
    transactions = pa.table(
        {
            "transaction_id": _ids("t", np.arange(1, tx_s.size + 1), _TRANSACTION_ID_WIDTH),
            "order_id": _ids("o", tx_order[tx_sort] + 1, _ORDER_ID_WIDTH),
            "user_id": pc.take(user_ids, pa.array(tx_user[tx_sort])),
            "transaction_type": _labels(TRANSACTION_TYPES, tx_is_refund[tx_sort].astype(np.int8)),
            "status": _labels(TRANSACTION_STATUSES, tx_is_cancelled[tx_sort].astype(np.int8)),
            "amount": pa.array(tx_amount[tx_sort], type=pa.float64()),
            "currency": pa.repeat(pa.scalar(CURRENCY, pa.large_string()), tx_s.size),
            "occurred_at": pa.array(ts(tx_s[tx_sort]), type=_TS),
        },
        schema=_in_memory(SCHEMAS["transactions"]),
    )

    def buyers_only(values: np.ndarray) -> np.ndarray:
        return np.where(is_buyer, values, np.nan)

    alive = pd.array(np.where(is_customer, ~has_dropped, False), dtype="boolean")
    alive[~is_customer] = pd.NA
    user_truth = pd.DataFrame(
        {
            "user_id": user_ids.to_pandas(),
            "signup_at": ts(signup_s),
            "channel": channel_names.to_pandas(),
            "is_buyer": is_buyer,
            "is_customer": is_customer,
            "first_order_at": ts_or_nat(first_order_s),
            "purchase_rate": buyers_only(lam),
            "dropout_prob": buyers_only(p_drop),
            "spend_nu": buyers_only(nu),
            "expected_order_value": buyers_only(config.gg_p / nu),
            "n_repeat_purchases": repeats_of,
            "dropped_out_at": ts_or_nat(dropout_s),
            "is_alive_at_end": alive,
            "engaged_until_at": ts(np.minimum(np.floor(engaged_until * _DAY_S).astype(np.int64), end_s - 1)),
            "reactivated_at": ts_or_nat(
                np.where(comes_back, np.floor(return_t * _DAY_S), -1).astype(np.int64)
            ),
            "session_rate": session_rate,
            "has_app": has_app,
        }
    )
    return GeneratedDataset(
        config=config,
        users=users.to_pandas(),
        events=events_frame,
        transactions=transactions.to_pandas(),
        user_truth=user_truth,
    )


# ---------------------------------------------------------------------------------------------
# Landing


def _to_arrow(df: pd.DataFrame, schema: pa.Schema, what: str) -> pa.Table:
    """The frame as Arrow, checked against ``schema``; string columns may stay ``large_string``.

    The cast to ``schema`` happens per written file (``_write_parquet``), so a 50M-row frame is
    never copied whole.
    """
    missing = [name for name in schema.names if name not in df.columns]
    if missing:
        raise ValueError(f"{what}: {len(df)} rows lack the columns {missing} of the landing contract")
    table = pa.Table.from_pandas(df[schema.names], preserve_index=False).replace_schema_metadata(None)
    for field in schema:
        column = table[field.name]
        is_text = column.type in (pa.string(), pa.large_string(), pa.null())  # null: all values missing
        if field.type == pa.string() and not is_text:
            raise ValueError(f"{what}.{field.name}: expected strings, got {column.type}; cast it first")
        if not field.nullable and column.null_count:
            raise ValueError(
                f"{what}.{field.name}: {column.null_count} of {len(df)} rows are null; the landing "
                "contract requires a value"
            )
    try:
        table.slice(0, 0).cast(schema)
    except (pa.ArrowException, ValueError) as exc:
        raise ValueError(f"{what}: {len(df)} rows do not fit the landing schema {schema}: {exc}") from exc
    return table


def _is_sorted(table: pa.Table, time_col: str, id_col: str) -> bool:
    t = table[time_col].cast(pa.int64()).to_numpy()
    step = np.diff(t)
    if (step < 0).any():
        return False
    tie = np.flatnonzero(step == 0)
    if tie.size == 0:
        return True
    ids = table[id_col]
    return bool(pc.all(pc.less(pc.take(ids, pa.array(tie)), pc.take(ids, pa.array(tie + 1)))).as_py())


def _write_atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def _write_parquet(table: pa.Table, path: Path, schema: pa.Schema) -> None:
    # Dictionary-encode only the repetitive string columns: trying it on unique ids and
    # timestamps costs time and bytes.
    table = table.cast(schema)  # safe cast: errors instead of truncating timestamps
    dictionary = [f.name for f in schema if f.name in _DICTIONARY_COLUMNS]
    _write_atomic(
        path,
        lambda tmp: pq.write_table(table, tmp, compression="zstd", use_dictionary=dictionary, version="2.6"),
    )


def _write_daily(table: pa.Table, schema: pa.Schema, base: Path, source: str, time_col: str) -> list[Path]:
    """One file per UTC day of ``time_col``; the table is sorted by that column."""
    day = table[time_col].cast(pa.int64()).to_numpy() // (_DAY_S * _US_PER_S)
    days, first = np.unique(day, return_index=True)
    bounds = np.append(first, day.size)
    jobs = []
    for d, lo, hi in zip(days.tolist(), bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        date = (_EPOCH + datetime.timedelta(days=d)).isoformat()
        path = base / date / f"{source}-{date}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        jobs.append((table.slice(lo, hi - lo), path))
    # The Parquet writer releases the GIL; each file's bytes do not depend on the thread.
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        list(pool.map(lambda job: _write_parquet(*job, schema), jobs))
    return [path for _, path in jobs]


def _remove_stale(base: Path, source: str, written: list[Path]) -> None:
    """Remove this source's day files (and temp files) that the current run did not write."""
    keep = set(written)
    for path in [*base.glob(f"*/{source}-*.parquet"), *base.glob("*/.*.tmp")]:
        if path not in keep:
            path.unlink()
    for folder in base.iterdir():
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def write_landing(dataset: GeneratedDataset, landing_dir: Path) -> dict[str, dict[str, int]]:
    """Write the dataset to the landing area.

    Layout: ``<landing_dir>/<source>/<YYYY-MM-DD>/<source>-<YYYY-MM-DD>.parquet``, one file per
    source per UTC day of ``signup_at``/``occurred_at`` (no empty files), rows sorted by time
    then id, Arrow schema ``SCHEMAS[source]`` (timestamps ``timestamp[us]``, tz-naive UTC); plus
    ``_truth/generator.json`` (``dataset.truth()``, sorted keys, indent 2) and
    ``_truth/user_truth.parquet``. Files are written to a temporary name and renamed, and day
    files of a source that this run did not write (from an earlier, different run) are removed,
    so the folder always holds exactly one dataset. The bytes are deterministic for a config.

    Returns
    -------
    dict
        ``{source: {"files": n_files, "rows": n_rows}}`` for users, events and transactions.
    """
    landing_dir = Path(landing_dir)
    frames = {"users": dataset.users, "events": dataset.events, "transactions": dataset.transactions}
    summary: dict[str, dict[str, int]] = {}
    for source in SOURCES:
        time_col, id_col = _TIME_COLUMN[source], _ID_COLUMN[source]
        table = _to_arrow(frames[source], SCHEMAS[source], source)
        if not _is_sorted(table, time_col, id_col):
            table = table.sort_by([(time_col, "ascending"), (id_col, "ascending")])
        base = landing_dir / source
        written = _write_daily(table, SCHEMAS[source], base, source, time_col)
        if base.exists():
            _remove_stale(base, source, written)
        summary[source] = {"files": len(written), "rows": table.num_rows}

    truth_dir = landing_dir / "_truth"
    truth_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(dataset.truth(), sort_keys=True, indent=2) + "\n"
    _write_atomic(truth_dir / "generator.json", lambda tmp: tmp.write_text(text, encoding="utf-8"))
    truth_table = _to_arrow(dataset.user_truth, USER_TRUTH_SCHEMA, "user_truth")
    _write_parquet(truth_table, truth_dir / "user_truth.parquet", USER_TRUTH_SCHEMA)
    return summary

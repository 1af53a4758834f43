"""Every setting in one table, read once into a frozen object that is passed down.

Precedence, highest first: command-line options, environment variables (``PANORAMA_`` +
the upper-cased name), the ``gateway:`` section of the config file, the default. Nothing
else in Panorama reads ``os.environ``, except ``${env:...}`` references in the config file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit


def _bool(text: Any) -> bool:
    if isinstance(text, bool):
        return text
    value = str(text).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _positive_int(text: Any) -> int:
    value = int(text)
    if value < 1:
        raise ValueError("expected a whole number of at least 1")
    return value


def _count(text: Any) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("expected a whole number, 0 or more")
    return value


def _depth(text: Any) -> int:
    value = int(text)
    if not 1 <= value <= 100:  # the depth check walks one Python frame per level
        raise ValueError("expected a whole number from 1 to 100")
    return value


def _seconds(text: Any) -> float:
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise ValueError("expected a positive number of seconds")
    return value


def _seconds_or_zero(text: Any) -> float:
    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise ValueError("expected a number of seconds, 0 or more")
    return value


def redis_url(text: Any) -> str:
    """A Redis URL, checked; the message never echoes it (it may hold a password)."""
    url = str(text).strip()
    if not url:
        return ""  # no shared cache
    expected = "expected redis://host:port/db (or rediss://host:port/db, unix:///path?db=N)"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        raise ValueError(f"{expected}; the port is not a number") from None
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"{expected}; the scheme is none of these")
    if parts.scheme != "unix" and not parts.hostname:
        raise ValueError(f"{expected}; the host is missing")
    db = parts.path.lstrip("/")
    if parts.scheme != "unix" and db and not db.isdigit():
        raise ValueError(f"{expected}; the database must be a number")
    return url


def _chunk_size(text: Any) -> int:
    value = int(text)
    if not 1 <= value <= 10_000:
        # One audit entry names at most 10,000 customers, and a chunk is never split.
        raise ValueError("expected a whole number from 1 to 10000")
    return value


def _country(text: Any) -> str:
    value = str(text).strip().upper()
    if len(value) != 2 or not value.isalpha():
        raise ValueError("expected a two-letter ISO country code such as FR")
    return value


def _log_level(text: Any) -> str:
    value = str(text).strip().lower()
    if value not in ("debug", "info", "warning", "error"):
        raise ValueError("expected debug, info, warning or error")
    return value


def _config_store(text: Any) -> str:
    value = str(text).strip()
    if value in ("", "file"):
        return "file"
    if value.startswith("file:") and len(value) > len("file:"):
        return value
    if not value.startswith(("postgresql://", "postgres://")):
        raise ValueError("expected `file`, `file:DIR` or a postgresql://user@host:port/database "
                         "URL")
    return value


def _host_list(text: Any) -> str:
    import ipaddress

    for part in (p.strip() for p in str(text).split(",")):
        if "/" in part:
            ipaddress.ip_network(part, strict=False)
    return str(text).strip()


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    parse: Callable[[Any], Any] = str
    secret: bool = False  # its value never appears in an error


SETTINGS: tuple[Setting, ...] = (
    Setting("config", "panorama.yaml", "Path of the config file (sources and mappings)."),
    Setting("host", "127.0.0.1", "Interface the HTTP server listens on."),
    Setting("port", 8000, "Port the HTTP server listens on.", _positive_int),
    Setting("max_page_size", 100, "Largest `first` accepted by `customers` and list fields.",
            _positive_int),
    Setting("default_page_size", 20, "`first` of `customers` when the query does not say.",
            _positive_int),
    Setting("default_country", "FR",
            "Country of phone numbers given without a country code in queries.", _country),
    Setting("identity_hops", 3,
            "How many rounds of linking (record -> shared e-mail/phone/card -> record) to follow.",
            _positive_int),
    Setting("identity_live_lookups", True,
            "With an identity index: also search every source live for records sharing a "
            "customer's keys (records created since the last `panorama index`). False: the index "
            "alone finds customers and sources are read by primary key (fast on large tables; "
            "new records link at the next index run). Without an index, lookups are always live.",
            _bool),
    Setting("graphiql", True, "Serve the GraphiQL IDE on GET /graphql.", _bool),
    Setting("ready_retry_seconds", 2, "Seconds between readiness probes of sources not yet seen.",
            _positive_int),
    Setting("request_deadline_seconds", 10.0,
            "Seconds a request's source calls may take in all; a source still busy then is cut "
            "off (SOURCE_TIMEOUT) and the others' data is returned.", _seconds),
    Setting("read_retries", 2,
            "Retries of a source read after a transient error (connection refused or lost).",
            _count),
    Setting("retry_backoff_seconds", 0.05,
            "Longest wait before the first read retry; doubles for each further one (jittered).",
            _seconds),
    Setting("breaker_failures", 5,
            "Failures in a row after which a source's circuit breaker opens.", _positive_int),
    Setting("breaker_cooldown_seconds", 30.0,
            "Seconds an open breaker answers without calling the source before one trial call.",
            _seconds),
    Setting("cache_ttl_seconds", 0.0,
            "Seconds a source's results are served from the cache; 0: always live. A source's "
            "own `cache_ttl_seconds` in the config overrides it.", _seconds_or_zero),
    Setting("cache_max_entries", 10_000,
            "Source results the in-process cache keeps in all (least recently used dropped "
            "first).", _positive_int),
    Setting("cache_redis_url", "",
            "redis://host:port/db of a cache shared by every replica; empty: each replica "
            "caches on its own. May hold a password: set it in the environment.", redis_url,
            secret=True),
    Setting("export_chunk_size", 1000,
            "Customers an export reads, computes and writes at a time (1 to 10000): memory "
            "grows with it, round trips shrink.", _chunk_size),
    Setting("log_level", "info", "Log level: debug, info, warning or error.", _log_level),
    Setting("admin_token", "", "A static bearer credential that authenticates as an admin "
                               "service principal (steward actions included); empty: none. A "
                               "secret: set it in the environment.", secret=True),
    Setting("config_store", "file",
            "Where config versions live: `file` (history next to the config file, for one "
            "gateway), `file:DIR` (history in DIR) or a postgresql:// URL shared by every "
            "replica, which picks a change up within a second. May hold a password: set it in "
            "the environment.", _config_store,
            secret=True),
    Setting("admin_secrets_dir", "",
            "The directory ${file:...} secret references written through the admin API must "
            "stay inside; empty: the config file's directory."),
    Setting("admin_allowed_hosts", "",
            "Comma-separated hosts (`db.example.com`, `*.shops.example.com`), addresses or "
            "networks (`10.0.0.0/8`) the admin API may point connectors at; empty: any.",
            _host_list),
    Setting("admin_max_body_bytes", 1_048_576,
            "Largest admin API request body; larger ones get 413.", _positive_int),
    Setting("max_query_depth", 10,
            "Most fields on one path of a GraphQL operation (1 to 100); deeper: QUERY_TOO_DEEP.",
            _depth),
    Setting("max_aliases", 15, "Most aliases in one operation; more: TOO_MANY_ALIASES.", _count),
    Setting("max_tokens", 2000,
            "Most tokens (comments included) in a GraphQL document; more: TOO_MANY_TOKENS.",
            _positive_int),
    Setting("max_directives", 50, "Most directives in one operation; more: TOO_MANY_DIRECTIVES.",
            _count),
    Setting("max_query_cost", 20_000,
            "Highest estimated cost of an operation (docs/security.md); more: QUERY_TOO_COSTLY.",
            _positive_int),
    Setting("max_body_bytes", 1_048_576,
            "Largest POST /graphql request body; larger ones get 413 (BODY_TOO_LARGE).",
            _positive_int),
    Setting("metrics_enabled", True,
            "Serve Prometheus metrics on GET /metrics (no credential: keep it inside the network "
            "boundary); false: 404.", _bool),
    Setting("log_format", "text",
            "Log lines as `text` (as before) or `json` (one object per line, with the request id).",
            lambda text: __import__("gateway.logs", fromlist=["log_format"]).log_format(text)),
    Setting("tracing_enabled", False,
            "OpenTelemetry spans per request and source call, when opentelemetry-api is installed "
            "(exporter: the OpenTelemetry SDK's own configuration).", _bool),
)

_BY_NAME = {s.name: s for s in SETTINGS}


class SettingsError(ValueError):
    """A setting has a value that cannot be used."""


@dataclass(frozen=True)
class Settings:
    config: str = "panorama.yaml"
    host: str = "127.0.0.1"
    port: int = 8000
    max_page_size: int = 100
    default_page_size: int = 20
    default_country: str = "FR"
    identity_hops: int = 3
    identity_live_lookups: bool = True
    graphiql: bool = True
    ready_retry_seconds: int = 2
    request_deadline_seconds: float = 10.0
    read_retries: int = 2
    retry_backoff_seconds: float = 0.05
    breaker_failures: int = 5
    breaker_cooldown_seconds: float = 30.0
    cache_ttl_seconds: float = 0.0
    cache_max_entries: int = 10_000
    cache_redis_url: str = field(default="", repr=False)
    export_chunk_size: int = 1000
    log_level: str = "info"
    admin_token: str = field(default="", repr=False)
    config_store: str = field(default="file", repr=False)
    admin_secrets_dir: str = ""
    admin_allowed_hosts: str = ""
    admin_max_body_bytes: int = 1_048_576
    max_query_depth: int = 10
    max_aliases: int = 15
    max_tokens: int = 2000
    max_directives: int = 50
    max_query_cost: int = 20_000
    max_body_bytes: int = 1_048_576
    metrics_enabled: bool = True
    log_format: str = "text"
    tracing_enabled: bool = False

    @classmethod
    def load(
        cls,
        *,
        overrides: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
        file_section: Mapping[str, Any] | None = None,
    ) -> Settings:
        """Build settings from the sources above; a bad value names the setting and its source."""
        values: dict[str, Any] = {}
        layers = (
            ("the config file's gateway section", file_section or {}, ""),
            ("the environment", environ or {}, "PANORAMA_"),
            ("the command line", overrides or {}, ""),
        )
        for origin, layer, prefix in layers:
            if not prefix:
                unknown = sorted(set(layer) - set(_BY_NAME))
                if unknown:
                    raise SettingsError(
                        f"unknown setting {', '.join(map(repr, unknown))} in {origin}; "
                        f"known: {', '.join(_BY_NAME)}")
            for setting in SETTINGS:
                key = prefix + setting.name.upper() if prefix else setting.name
                if key in layer and layer[key] is not None:
                    try:
                        values[setting.name] = setting.parse(layer[key])
                    except (TypeError, ValueError) as exc:
                        where = key if prefix else setting.name
                        shown = "its value" if setting.secret else repr(layer[key])
                        raise SettingsError(
                            f"setting {where} from {origin}: {shown} is not valid ({exc})"
                        ) from None
        settings = cls(**values)
        if settings.default_page_size > settings.max_page_size:
            raise SettingsError(
                f"default_page_size ({settings.default_page_size}) is larger than max_page_size "
                f"({settings.max_page_size}); lower one or raise the other")
        return settings


assert [f.name for f in fields(Settings)] == [s.name for s in SETTINGS], "table and class drifted"
assert all(getattr(Settings, s.name) == s.default for s in SETTINGS), "defaults drifted"

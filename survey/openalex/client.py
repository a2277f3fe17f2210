"""The OpenAlex client: pyalex builds the queries; requests sends them with a timeout, retries
with exponential backoff, and turns every failure into one message that says what to do.

pyalex's own transport has no timeout and always talks to api.openalex.org, so the HTTP call
is made here; the query strings are pyalex's. The API key travels as the ``api_key`` query
parameter (as OpenAlex documents it) and is never put into a message.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from pyalex import Works

API_KEY_ENV = "OPENALEX_API_KEY"
EMAIL_ENV = "OPENALEX_EMAIL"
URL_ENV = "OPENALEX_URL"  # another server speaking the OpenAlex API (a mirror, or the benchmark's stub)
DEFAULT_URL = "https://api.openalex.org"
BATCH = 100  # OpenAlex takes at most 100 values in one OR filter
TITLE_CANDIDATES = 10

# What the cache keeps of each work: what the graph, `suggest` and `add --doi` read.
WORK_FIELDS = ("id", "doi", "title", "display_name", "publication_year", "publication_date", "type", "type_crossref",
               "cited_by_count", "referenced_works", "abstract_inverted_index", "open_access",
               "best_oa_location", "primary_location", "topics", "authorships", "biblio", "ids")

KEY_HELP = (f"OpenAlex needs an API key (free since February 2026): create an account at openalex.org, "
            f"copy the key from https://openalex.org/settings/api and run `export {API_KEY_ENV}=YOUR_KEY`; "
            f"also `export {EMAIL_ENV}=you@example.org` so OpenAlex can contact you. "
            "Or use --offline to work from the cache only.")


class OpenAlexError(RuntimeError):
    """A request that failed for good; ``kind`` says why (key, rate-limit, server, timeout, network,
    malformed, rejected)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Settings:
    api_key: str
    email: str = ""
    base_url: str = DEFAULT_URL
    timeout_s: float = 30.0
    retries: int = 4  # after the first attempt
    backoff_s: float = 1.0  # first wait; doubled on each retry

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        key = os.environ.get(API_KEY_ENV, "").strip()
        if not key:
            raise OpenAlexError("key", f"{API_KEY_ENV} is not set. {KEY_HELP}")
        return cls(api_key=key, email=os.environ.get(EMAIL_ENV, "").strip(),
                   base_url=os.environ.get(URL_ENV, "").strip().rstrip("/") or DEFAULT_URL, **overrides)


_ADVICE = {
    "rate-limit": "OpenAlex limits requests per second and per day: wait a while and run `survey enrich` "
                  "again (it resumes where it stopped); your key's allowance is shown at "
                  "https://openalex.org/settings/api",
    "server": "OpenAlex is having trouble: run `survey enrich` again later (it resumes where it stopped)",
    "timeout": "OpenAlex did not answer in time: run again later, or with a longer --timeout",
    "network": "is this machine online? `survey enrich --offline` works from the cache alone",
    "malformed": "the answer was cut off or is not OpenAlex's: run again later",
}


class Client:
    def __init__(self, settings: Settings, session: requests.Session | None = None, sleep=time.sleep):
        self.settings = settings
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = "survey-explorer" + (
            f" (mailto:{settings.email})" if settings.email else "")
        self._sleep = sleep
        self.requests_sent = 0

    def works_by_doi(self, dois: list[str]) -> list[dict]:
        """The works of up to 100 DOIs (lower case, no https://doi.org/); unknown DOIs are just absent."""
        return self._list(Works().filter_or(doi=list(dois)), len(dois), f"{len(dois)} DOI(s)")

    def works_by_id(self, ids: list[str]) -> list[dict]:
        """The works of up to 100 OpenAlex ids (``W123`` or their URLs)."""
        short = [i.rsplit("/", 1)[-1] for i in ids]
        return self._list(Works().filter_or(openalex_id=short), len(ids), f"{len(ids)} OpenAlex id(s)")

    def search_title(self, words: str) -> list[dict]:
        """The works whose title best matches ``words`` (letters and digits only: OpenAlex's filter
        syntax gives commas and colons a meaning)."""
        return self._list(Works().search_filter(title=words), TITLE_CANDIDATES, f"the title '{words[:60]}'")

    def work_by_doi(self, doi: str) -> dict | None:
        """One work, or None when OpenAlex does not know the DOI (a free singleton request)."""
        query = Works()
        query.params = f"doi:{doi}"  # pyalex's form for /works/doi:...
        return self._get(query.url, {"select": ",".join(WORK_FIELDS)}, f"DOI {doi}", missing_ok=True)

    def _list(self, query: Works, expected: int, what: str) -> list[dict]:
        if expected > BATCH:
            raise ValueError(f"at most {BATCH} values per request, got {expected}")
        # room for two works that share a DOI; 200 is OpenAlex's page limit
        data = self._get(query.select(list(WORK_FIELDS)).url, {"per-page": min(200, 2 * expected)}, what)
        results = data.get("results")
        if not isinstance(results, list) or not all(isinstance(w, dict) and w.get("id") for w in results):
            raise OpenAlexError("malformed", f"OpenAlex's answer for {what} has no list of works; "
                                             f"{_ADVICE['malformed']}")
        return results

    def _get(self, pyalex_url: str, extra: dict, what: str, missing_ok: bool = False) -> dict | None:
        parts = urlsplit(pyalex_url)
        url = f"{self.settings.base_url}{parts.path}" + (f"?{parts.query}" if parts.query else "")
        params = {**extra, "api_key": self.settings.api_key}
        if self.settings.email:
            params["mailto"] = self.settings.email
        s = self.settings
        attempts = s.retries + 1
        for attempt in range(attempts):
            kind, detail, wait = self._attempt(url, params, missing_ok)
            if kind == "ok":
                return detail
            if attempt + 1 < attempts:
                self._sleep(wait if wait is not None else s.backoff_s * 2 ** attempt)
        raise OpenAlexError(kind, f"OpenAlex request for {what} failed: {detail} "
                                  f"({attempts} attempt(s)); {_ADVICE[kind]}")

    def _attempt(self, url: str, params: dict, missing_ok: bool):
        """``("ok", json, None)``, or a retryable failure ``(kind, detail, wait)``; raises on the rest."""
        self.requests_sent += 1
        try:
            response = self.session.get(url, params=params, timeout=self.settings.timeout_s)
        except requests.Timeout:
            return "timeout", f"no answer within {self.settings.timeout_s:g} s", None
        except requests.ConnectionError as err:
            return "network", f"could not connect to {urlsplit(url).netloc} ({type(err).__name__})", None
        status = response.status_code
        if status == 429:
            return "rate-limit", "too many requests (HTTP 429)", _retry_after(response)
        if status >= 500:
            return "server", f"server error (HTTP {status})", _retry_after(response)
        if status == 404 and missing_ok:
            return "ok", None, None
        if status in (401, 403):
            raise OpenAlexError("key", f"OpenAlex refused the API key (HTTP {status}); check "
                                       f"{API_KEY_ENV}. {KEY_HELP}")
        if status >= 400:
            raise OpenAlexError("rejected", f"OpenAlex rejected the query (HTTP {status}: "
                                            f"{response.text[:200].strip()})")
        try:
            data = response.json()
        except ValueError:
            return "malformed", f"the answer is not valid JSON ({len(response.content)} bytes)", None
        if not isinstance(data, dict):
            return "malformed", "the answer is JSON but not an object", None
        return "ok", data, None


def _retry_after(response: requests.Response) -> float | None:
    """OpenAlex's own wait, if it says one (capped: a day's wait is better reported than slept)."""
    value = response.headers.get("Retry-After", "")
    try:
        return min(60.0, max(0.0, float(value)))
    except ValueError:
        return None

"""The explorer's guards, tried from the outside: live waitress servers on free ports, driven over HTTP.

Dash callbacks are POSTs to /_dash-update-component whose JSON names the callback's outputs and carries its
inputs and states; ``Client.callback`` builds them from the server's own /_dash-dependencies, as the browser
does. Dash pages render through such a callback too, which is how ``Client.page`` reads a page's layout.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import re
import shutil
import time
from types import SimpleNamespace

import pytest
import requests
from click.testing import CliRunner
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

import app.main
from app import reader_study_views as rv
from app.security import EXTENSION, MB, Access, start_url
from reproductions.common import reader_study as rs
from app.cli import main as survey
from tests.browser import LiveServer, browser_access, wait_for
from tests.conftest import REPO, entry
from tests.test_app_browser import JS_PLOT, JS_POINT

TOKEN = "security-tests-token"
LIMIT_MB = 0.05  # the servers here take uploads of up to about 52 kB
NEW_PAPER = entry("Guarded2025", "A paper added through the guarded explorer", 2025)
WRITE_CONTROLS = {"ex-upload", "ex-paste", "ex-preview", "ex-add", "ex-tags-input", "ex-tags-save"}


def corpus_copy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus") / "bib"
    shutil.copytree(REPO / "bib", folder, ignore=shutil.ignore_patterns("*.lock", "*.bak"))
    return folder / "corpus.bib"


def start(tmp_path_factory, host: str = "127.0.0.1", **settings) -> LiveServer:
    access = Access.for_bind(host, token=TOKEN, max_upload_mb=LIMIT_MB, **settings)
    return LiveServer([corpus_copy(tmp_path_factory)], access, host=host)


class Client:
    """A requests session against one live server, holding the token's cookie (``signed_in``) or not."""

    def __init__(self, server: LiveServer, signed_in: bool):
        self.url = server.url
        self.session = requests.Session()
        if signed_in:
            self.session.cookies.set(server.app.server.extensions[EXTENSION].cookie_name, TOKEN)

    def get(self, path: str = "/", **kw) -> requests.Response:
        return self.session.get(self.url + path, timeout=30, **kw)

    def callback(self, output: str, values: dict, changed: str, origin: str | None = "own",
                 headers: dict | None = None) -> requests.Response:
        """Call the server callback whose first output is ``output``, with ``values`` ({"id.prop": value})
        and the page it comes from in its Origin header (None: no Origin, as from a script)."""
        deps = self.get("/_dash-dependencies").json()
        dep = next(d for d in deps if d["output"].strip(".").startswith(output) and not d.get("clientside_function"))
        outputs = [dict(zip(("id", "property"), o.split(".", 1))) for o in dep["output"].strip(".").split("...")]

        def filled(items: list[dict]) -> list[dict]:
            return [{**i, "value": values[f"{i['id']}.{i['property']}"]} if f"{i['id']}.{i['property']}" in values
                    else i for i in items]

        body = {"output": dep["output"], "outputs": outputs, "inputs": filled(dep["inputs"]),
                "state": filled(dep["state"]), "changedPropIds": [changed]}
        sent = {"Origin": self.url if origin == "own" else origin} if origin else {}
        return self.session.post(self.url + "/_dash-update-component", json=body, headers=sent | (headers or {}),
                                 timeout=30)

    def add(self, bibtex: str, **kw) -> requests.Response:
        return self.callback("ex-add-result", {"ex-add.n_clicks": 1, "ex-paste.value": bibtex}, "ex-add.n_clicks", **kw)

    def preview(self, bibtex: str, **kw) -> requests.Response:
        return self.callback("ex-add-result", {"ex-preview.n_clicks": 1, "ex-paste.value": bibtex},
                             "ex-preview.n_clicks", **kw)

    def upload(self, data: bytes, **kw) -> requests.Response:
        contents = "data:application/octet-stream;base64," + base64.b64encode(data).decode()
        return self.callback("ex-add-result", {"ex-upload.contents": contents, "ex-upload.filename": "new.bib"},
                             "ex-upload.contents", **kw)

    def save_tags(self, key: str, tags: str, **kw) -> requests.Response:
        return self.callback("ex-tags-status", {"ex-tags-save.n_clicks": 1, "ex-tags-input.value": tags,
                                                "ex-url.search": f"?paper={key}"}, "ex-tags-save.n_clicks", **kw)

    def page_ids(self, path: str, search: str = "") -> tuple[set[str], str]:
        """The component ids of page ``path`` as the browser receives it, and its layout's JSON."""
        answer = self.callback("_pages_content", {"_pages_location.pathname": path,
                                                  "_pages_location.search": search}, "_pages_location.pathname")
        assert answer.status_code == 200, answer.text
        return set(re.findall(r'"id":\s*"([^"]+)"', answer.text)), answer.text


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = start(tmp_path_factory, allow_hosts=("explorer.lab.example",))
    yield live
    live.stop()


@pytest.fixture(scope="module")
def read_only(tmp_path_factory):
    live = start(tmp_path_factory, read_only=True)
    yield live
    live.stop()


@pytest.fixture(scope="module")
def exposed(tmp_path_factory):
    """A server listening on every address, as `survey serve --host 0.0.0.0` does."""
    live = start(tmp_path_factory, host="0.0.0.0")
    yield live
    live.stop()


def one_line(response: requests.Response) -> str:
    assert response.text.endswith("\n") and response.text.count("\n") == 1, response.text
    return response.text


# --- 1. the Host header -------------------------------------------------------------------------------------

@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST", "[::1]:{port}", "127.0.0.1",
                                  "explorer.lab.example:{port}"])
def test_the_names_the_server_was_started_for_are_served(server, host):
    port = server.url.rsplit(":", 1)[1]
    assert requests.get(server.url + "/", headers={"Host": host.format(port=port)}, timeout=30).status_code == 200


@pytest.mark.parametrize("host", ["evil.example.com", "evil.example.com:{port}", "127.0.0.1.evil.example.com:{port}",
                                  "localhost.evil.example.com", "[::2]:{port}"])
def test_any_other_host_gets_403_with_a_reason(server, host):
    port = server.url.rsplit(":", 1)[1]
    host = host.format(port=port)
    for path in ("/", "/_dash-layout", "/_dash-dependencies", "/reader-study", "/gaps"):
        refused = requests.get(server.url + path, headers={"Host": host}, timeout=30)
        assert refused.status_code == 403
        assert host.split(":")[0].strip("[]") in one_line(refused) and "--allow-host" in refused.text


def test_a_rebound_page_cannot_write_even_with_the_cookie(server):
    """DNS rebinding: the attacker's name now points at 127.0.0.1, so its page is 'same origin' to itself."""
    before = server.paths[0].read_bytes()
    rebound = "evil.example.com:" + server.url.rsplit(":", 1)[1]
    refused = Client(server, signed_in=True).add(NEW_PAPER, origin=f"http://{rebound}", headers={"Host": rebound})
    assert refused.status_code == 403
    assert server.paths[0].read_bytes() == before


# --- 2. the Origin of what writes ----------------------------------------------------------------------------

@pytest.mark.parametrize("headers", [{"Origin": "http://evil.example.com"}, {"Origin": "null"},
                                     {"Origin": "http://127.0.0.1:1"},  # another local server: same site
                                     {"Referer": "http://evil.example.com/page.html"}])
def test_a_write_from_another_origin_is_refused_even_with_the_token(server, headers):
    client = Client(server, signed_in=True)
    before = server.paths[0].read_bytes()
    assert client.add(NEW_PAPER, origin=None, headers=headers).status_code == 403
    assert client.save_tags("Beck2016SurVis", "type:tool, free", origin=None, headers=headers).status_code == 403
    assert client.upload(NEW_PAPER.encode(), origin=None, headers=headers).status_code == 403
    assert server.paths[0].read_bytes() == before


def test_a_reader_study_answer_needs_the_token_and_its_own_origin(server, study):
    key = next(f.key for f in rv.find_studies() if f.folder.resolve() == study.folder.resolve())
    _, item = rs.next_item(study, "Reader 1", {})
    values = {"rs-next.n_clicks": 1, "rs-real.value": "real", "rs-label.value": study.classes[0],
              "rs-session.data": {"study": key, "reader": "Reader 1", "item": item, "shown": time.time()}}
    anonymous, reader = Client(server, signed_in=False), Client(server, signed_in=True)
    assert anonymous.callback("rs-progress", values, "rs-next.n_clicks").status_code == 403
    assert reader.callback("rs-progress", values, "rs-next.n_clicks", origin="http://evil.example.com").status_code == 403
    assert rs.load_answers(study, "Reader 1") == {}
    assert reader.callback("rs-progress", values, "rs-next.n_clicks").status_code == 200
    assert list(rs.load_answers(study, "Reader 1")) == [item]


# --- 3. the token --------------------------------------------------------------------------------------------

def test_a_write_without_the_token_is_refused_and_leaves_the_file_byte_identical(server):
    client = Client(server, signed_in=False)
    before = server.paths[0].read_bytes()
    refused = client.add(NEW_PAPER)
    assert refused.status_code == 403 and "token" in one_line(refused)
    assert client.save_tags("Beck2016SurVis", "type:tool, rewritten").status_code == 403
    assert server.paths[0].read_bytes() == before


def test_a_write_with_the_token_from_its_own_page_is_saved(server):
    client = Client(server, signed_in=True)
    before = server.paths[0].read_bytes()
    added = client.add(NEW_PAPER)
    assert added.status_code == 200 and "Written to" in added.text
    after = server.paths[0].read_bytes()
    assert len(after) > len(before) and b"Guarded2025" in after
    assert client.save_tags("Guarded2025", "type:method, guarded").status_code == 200
    assert b"guarded}" in server.paths[0].read_bytes()


def test_the_preview_writes_nothing_and_needs_no_token_on_loopback(server):
    before = server.paths[0].read_bytes()
    preview = Client(server, signed_in=False).preview(entry("Preview2025", "Only looked at", 2025))
    assert preview.status_code == 200 and "would add" in preview.text
    assert server.paths[0].read_bytes() == before


def test_reading_needs_no_token_on_loopback_but_the_page_offers_no_write_without_it(server, study):
    anonymous, signed_in = Client(server, signed_in=False), Client(server, signed_in=True)
    assert anonymous.get("/").status_code == 200 and anonymous.get("/_dash-layout").status_code == 200
    ids, layout = anonymous.page_ids("/", "?paper=Beck2016SurVis")
    assert "ex-details-title" in ids and not ids & WRITE_CONTROLS and "ex-write-refused" in ids
    assert "?token=" in layout
    assert WRITE_CONTROLS <= signed_in.page_ids("/", "?paper=Beck2016SurVis")[0]
    assert "rs-start" not in anonymous.page_ids("/reader-study")[0]
    assert "rs-start" in signed_in.page_ids("/reader-study")[0]


def test_the_address_with_the_token_sets_a_strict_http_only_cookie_and_leaves_the_address(server):
    client = Client(server, signed_in=False)
    visit = client.get(f"/?token={TOKEN}&tag=method%3ADCGAN", allow_redirects=False)
    assert visit.status_code == 302 and visit.headers["Location"] == "/?tag=method%3ADCGAN"
    cookie = visit.headers["Set-Cookie"]
    assert cookie.startswith(f"{server.app.server.extensions[EXTENSION].cookie_name}={TOKEN};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert client.add(entry("Signed2025", "Added after signing in", 2025)).status_code == 200
    wrong = Client(server, signed_in=False).get("/?token=guessed", allow_redirects=False)
    assert wrong.status_code == 403 and "token" in one_line(wrong)


def test_off_loopback_every_page_needs_the_token(exposed):
    anonymous, signed_in = Client(exposed, signed_in=False), Client(exposed, signed_in=True)
    for path in ("/", "/_dash-layout", "/_dash-dependencies", "/assets/style.css", "/reproductions", "/gaps",
                 "/assets/gaps.css"):
        refused = anonymous.get(path)
        assert refused.status_code == 403 and "token" in one_line(refused)
        assert signed_in.get(path).status_code == 200
    before = exposed.paths[0].read_bytes()
    assert anonymous.session.post(exposed.url + "/_dash-update-component", json={}, timeout=30).status_code == 403
    assert exposed.paths[0].read_bytes() == before
    assert anonymous.get(f"/?token={TOKEN}").status_code == 200  # signed in by the address, then served
    assert anonymous.add(NEW_PAPER).status_code == 200


def test_read_only_shows_no_write_control_and_refuses_every_write(read_only, study):
    client = Client(read_only, signed_in=True)
    before = read_only.paths[0].read_bytes()
    ids, layout = client.page_ids("/", "?paper=Beck2016SurVis")
    assert "ex-details-title" in ids and not ids & WRITE_CONTROLS and "read-only" in layout
    reading = client.page_ids("/reader-study")[0]
    assert "rs-write-refused" in reading and not {"rs-start", "rs-reader", "rs-next"} & reading
    for refused in (client.add(NEW_PAPER), client.save_tags("Beck2016SurVis", "type:tool, changed")):
        assert refused.status_code == 403 and "read-only" in one_line(refused)
    assert read_only.paths[0].read_bytes() == before


# --- 4. the server and the size of uploads -------------------------------------------------------------------

def test_the_server_is_waitress(server):
    assert Client(server, signed_in=False).get("/").headers["Server"] == "waitress"


def test_answers_come_compressed_where_the_browser_takes_it(server):
    client = Client(server, signed_in=False)
    for path in ("/_dash-layout", "/assets/style.css"):
        answer = client.get(path, headers={"Accept-Encoding": "gzip"})
        assert answer.headers["Content-Encoding"] == "gzip", path
        assert int(answer.headers["Content-Length"]) < len(answer.content) / 2, path  # the list and CSS repeat much
        assert "Accept-Encoding" in answer.headers["Vary"]
    plain = client.get("/_dash-layout", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers and plain.json()


def test_an_upload_over_the_limit_gets_413_and_writes_nothing(server):
    client = Client(server, signed_in=True)
    before = server.paths[0].read_bytes()
    paper = entry("Uploaded2025", "An upload within the limit", 2025).encode()
    small = client.upload(paper)
    assert small.status_code == 200 and "1 new" in small.text
    big = paper + b"%" * int(LIMIT_MB * MB)
    refused = client.upload(big)
    assert refused.status_code == 413 and "--max-upload" in one_line(refused)
    assert server.paths[0].read_bytes() == before


def test_a_request_over_the_servers_limit_is_refused_before_its_body_is_read(server):
    limit = server.app.server.extensions[EXTENSION].request_limit
    connection = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=30)
    connection.putrequest("POST", "/_dash-update-component")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(limit + 1))
    connection.endheaders()  # and no body: the answer comes first
    assert connection.getresponse().status == 413
    connection.close()


# --- 5. headers ----------------------------------------------------------------------------------------------

def test_every_answer_carries_the_security_headers(server):
    client = Client(server, signed_in=False)
    port = server.url.rsplit(":", 1)[1]
    answers = [client.get("/"), client.get("/_dash-layout"), client.get("/assets/style.css"),
               client.get("/", headers={"Host": f"evil.example.com:{port}"}), client.add(NEW_PAPER)]
    for answer in answers:
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Referrer-Policy"] == "same-origin"
        policy = dict(d.strip().split(" ", 1) for d in answer.headers["Content-Security-Policy"].split(";"))
        assert policy["frame-ancestors"] == "'none'" and policy["default-src"] == "'self'"
        assert policy["object-src"] == "'none'" and "'unsafe-inline'" not in policy["script-src"]


def test_every_inline_script_of_the_page_is_allowed_by_its_hash(server):
    page = Client(server, signed_in=False).get("/")
    html = re.sub(r"<!--.*?-->", "", page.text, flags=re.S)  # Dash's Internet Explorer notice never runs
    scripts = [body for attrs, body in re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
               if "src=" not in attrs and "application/json" not in attrs]
    assert scripts
    for body in scripts:
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in page.headers["Content-Security-Policy"], body[:80]


# --- the command ---------------------------------------------------------------------------------------------

def test_serve_help_lists_the_options():
    help_text = CliRunner().invoke(survey, ["serve", "--help"]).output
    for option in ("--host", "--port", "--allow-host", "--token", "SURVEY_TOKEN", "--read-only", "--max-upload",
                   "--debug"):
        assert option in help_text


def test_the_start_address_carries_the_token():
    assert start_url("127.0.0.1", 8050, "abc") == "http://127.0.0.1:8050/?token=abc"
    assert start_url("0.0.0.0", 8050, "a b/c") == "http://127.0.0.1:8050/?token=a%20b%2Fc"
    assert start_url("::1", 9000, "t") == "http://[::1]:9000/?token=t"


@pytest.fixture
def serve_command(monkeypatch, seed_copy):
    """``survey serve ARGS`` with the explorer built for real, up to the point where it would listen."""
    def run(*args: str, env: dict | None = None) -> tuple[str, Access, tuple]:
        started = {}

        def listen(explorer, host, port):
            started.update(access=explorer.server.extensions[EXTENSION], bind=(host, port))
            return SimpleNamespace(run=lambda: None)

        monkeypatch.setattr(app.main, "wsgi_server", listen)
        result = CliRunner().invoke(survey, ["serve", "--bib", str(seed_copy), *args], env=env or {})
        assert result.exit_code == 0, result.output
        return result.stderr, started["access"], started["bind"]
    return run


def test_serve_prints_the_address_that_carries_a_fresh_random_token(serve_command):
    printed, access, bind = serve_command(env={"SURVEY_TOKEN": None})
    assert start_url("127.0.0.1", 8050, access.token) in printed and bind == ("127.0.0.1", 8050)
    assert len(access.token) >= 32 and access.loopback and not access.read_only
    assert access.max_upload == 50 * MB
    assert serve_command(env={"SURVEY_TOKEN": None})[1].token != access.token


def test_serve_takes_its_token_and_settings_from_the_command_line_or_the_environment(serve_command):
    printed, access, _ = serve_command("--token", "given", "--port", "8123", "--read-only", "--max-upload", "2",
                                       "--allow-host", "a.example", "--allow-host", "b.example")
    assert "http://127.0.0.1:8123/?token=given" in printed
    assert access.read_only and access.max_upload == 2 * MB and {"a.example", "b.example"} <= access.hosts
    assert serve_command(env={"SURVEY_TOKEN": "from-env"})[1].token == "from-env"
    printed, access, bind = serve_command("--host", "0.0.0.0", "--token", "t")
    assert not access.loopback and bind == ("0.0.0.0", 8050) and "every page needs the token" in printed


# --- in the browser ------------------------------------------------------------------------------------------

@pytest.mark.browser
def test_the_first_visit_with_the_token_signs_the_browser_in(driver, tmp_path_factory):
    live = start(tmp_path_factory)  # another token than the one the test browser holds
    try:
        driver.get(live.url + "/")
        wait_for(lambda: driver.find_element(By.ID, "ex-write-refused"), message="the note instead of the add panel")
        assert not driver.find_elements(By.ID, "ex-upload")
        driver.get(live.url + f"/?token={TOKEN}&tag=method%3ADCGAN")
        wait_for(lambda: driver.find_element(By.ID, "ex-upload"), message="the add panel")
        assert "token" not in driver.current_url and "tag=method%3ADCGAN" in driver.current_url
        cookie = next(c for c in driver.get_cookies() if c["value"] == TOKEN)
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert driver.execute_script("return document.cookie").find(TOKEN) < 0  # no script can read it
    finally:
        live.stop()


CSP_LISTENER = """window.cspViolations = [];
document.addEventListener('securitypolicyviolation',
    e => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sourceFile));"""


@pytest.mark.browser
def test_the_explorer_works_under_its_content_security_policy(driver, tmp_path_factory):
    live = LiveServer([corpus_copy(tmp_path_factory)])
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": CSP_LISTENER})
    try:
        driver.get_log("browser")  # start the log afresh
        driver.get(live.url + "/")
        wait_for(lambda: driver.execute_script(JS_PLOT, "ex-graph"), message="the map")
        wait_for(lambda: driver.execute_script(JS_POINT, "Sortino2023Transformer"), message="the map's points")
        x, y, width, height = driver.execute_script(JS_POINT, "Sortino2023Transformer")
        plot = driver.execute_script(JS_PLOT, "ex-graph")
        # a click on the WebGL map: what needs 'unsafe-eval'
        ActionChains(driver).move_to_element_with_offset(plot, x - width / 2, y - height / 2).click().perform()
        wait_for(lambda: driver.find_element(By.ID, "ex-details-title").text, message="the detail panel")
        assert driver.find_element(By.ID, "ex-tags-save")
        assert driver.execute_script("return window.cspViolations") == []
        for path, ready in (("/reproductions", "paper10"), ("/reader-study", "rs-tab-read"), ("/gaps", "gp-gaps")):
            driver.get(live.url + path)
            wait_for(lambda: driver.find_element(By.ID, ready), message=path)
            assert driver.execute_script("return window.cspViolations") == []
        severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not severe, severe
    finally:
        live.stop()


@pytest.mark.browser
def test_an_upload_over_the_limit_says_so_in_the_page(driver, tmp_path_factory, tmp_path):
    live = LiveServer([corpus_copy(tmp_path_factory)], browser_access(max_upload_mb=LIMIT_MB))
    try:
        before = live.paths[0].read_bytes()
        big = tmp_path / "big.bib"
        big.write_text(NEW_PAPER + "%" * int(2 * LIMIT_MB * MB))
        driver.get(live.url + "/")
        wait_for(lambda: driver.find_element(By.CSS_SELECTOR, "#ex-upload input[type=file]"),
                 message="the upload").send_keys(str(big))
        message = wait_for(lambda: driver.find_element(By.ID, "ex-upload-too-large").text, message="the message")
        assert "big.bib" in message and f"up to {LIMIT_MB} MB" in message and "--max-upload" in message
        assert live.paths[0].read_bytes() == before
    finally:
        live.stop()

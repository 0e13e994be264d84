"""Check the built documentation site in a real browser: headless Chromium from Debian, driven by Playwright.

    python tools/sitecheck.py [SITE] [--nbs nbs] [--screens _site_screens]   # exit 1 and a list of problems if any

What is expected is read from the notebooks themselves, so that the checks follow the book as it grows:
- every notebook has its page under nbdev's page name (`02_weights.ipynb` -> `weights.html`), and it loads (HTTP 200);
- no page throws a JavaScript error or logs a console error, and no request leaves the site: requests to any host
  other than the local server are blocked and reported, and every local request must succeed (no 404);
- every <img> on every page loads (naturalWidth > 0), and every image output of a notebook (the chapter's figures,
  outside cells that nbdev/Quarto hide) is shown on its page: the page has at least as many loaded images as the
  notebook has image outputs, and each PNG/JPEG/GIF output is found, byte for byte, among them;
- math is typeset: pages whose notebook has TeX math hold MathJax containers and no MathJax error, and no page shows
  raw TeX (`$...$`, `$$`, `\\(`, `\\[`) in its text outside code;
- notebooks with saved widget state show rendered widgets;
- no shown code cell is wider than the column at 1280 px (it would be cut at its right edge);
- no figure is shown at under 90% of its size (its smallest text would drop below 9 px);
- no page shows a path of the build machine (a temporary folder, a home, site-packages, the checkout) or a markdown
  table left as raw pipes, outside code inputs;
- every link inside the site resolves: its target loads and the #fragment, if any, exists on the target page.
Screenshots of a few pages go to --screens (default _site_screens/, not committed).

The browser is Debian's chromium (apt-get install chromium), never one that Playwright downloads: set CHROMIUM to
use another executable.
"""
import argparse, base64, functools, hashlib, http.server, json, os, re, shutil, sys, threading, time
from pathlib import Path
from urllib.parse import urldefrag, urlparse, unquote

ROOT = Path(__file__).resolve().parents[1]

# as root, without a sandbox; no background traffic of Chromium's own (the machine's network is closed)
CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-quic', '--no-first-run',
                 '--disable-background-networking', '--disable-component-update', '--disable-sync',
                 '--disable-default-apps', '--disable-extensions', '--mute-audio']


def find_chromium():
    "Path of a Chromium executable (CHROMIUM, else chromium / chromium-browser on PATH), or None"
    for c in (os.environ.get('CHROMIUM'), shutil.which('chromium'), shutil.which('chromium-browser'), '/usr/bin/chromium'):
        if c and Path(c).exists(): return c


def launch(pw, **kw):
    "Debian's headless Chromium under Playwright (executable_path: Playwright never downloads a browser here)"
    exe = find_chromium()
    if not exe: raise RuntimeError('no Chromium: apt-get install -y chromium (tools/setup.sh does)')
    return pw.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS, **kw)


# ---- what the notebooks say the site must show ------------------------------------------------------------------

def page_name(nb):
    "nbdev's page (`nbs/02_weights.ipynb` -> `weights.html`), as nbdev itself computes it"
    try:
        from nbdev.doclinks import _nbpath2html
        return _nbpath2html(Path(nb)).name
    except ImportError:
        return re.sub(r'^\d+[a-zA-Z0-9]*_', '', Path(nb).name.lower()).rsplit('.', 1)[0] + '.html'


def _src(cell):
    s = cell.get('source', '')
    return ''.join(s) if isinstance(s, list) else s


def _directives(source):
    d = {}
    for line in source.split('\n'):
        m = re.match(r'^\s*#\s*\|\s*([\w-]+)\s*:?\s*(.*?)\s*$', line)
        if m: d[m.group(1)] = m.group(2)
        elif line.strip(): break
    return d


def _hidden(cell):
    "Cells whose output nbdev/Quarto leave off the page"
    if cell['cell_type'] != 'code': return False
    d = _directives(_src(cell))
    off = lambda k: d.get(k, '').lower() in ('false', 'no', '0')
    return bool({'export', 'exporti', 'hide', 'default_exp'} & d.keys()) or off('include') or off('output')


_re_math = re.compile(r'\$\$.+?\$\$|(?<![\\$\w])\$[^\s$](?:[^$\n]*?[^\s$])?\$(?![\w$])|\\begin\{(?:equation|align)', re.S)


def _has_math(md):
    md = re.sub(r'^```.*?^```', '', md, flags=re.M | re.S)
    md = re.sub(r'`[^`\n]*`', '', md)
    return bool(_re_math.search(md))


def expectations(nbs):
    "For each notebook: its page, image outputs (count and hashes), whether it has math, saved widget views"
    nbs = Path(nbs)
    out = {}
    for p in sorted(nbs.rglob('*.ipynb')):
        rel = p.relative_to(nbs)
        if any(x.startswith(('.', '_')) for x in rel.parts): continue
        for i in range(5):          # a notebook may be being rewritten right now
            try: nb = json.loads(p.read_text(encoding='utf-8')); break
            except json.JSONDecodeError:
                if i == 4: raise
                time.sleep(1)
        n_img, hashes, math, views = 0, [], False, 0
        state = (nb.get('metadata', {}).get('widgets') or {}).get('application/vnd.jupyter.widget-state+json', {}).get('state', {})
        for k, c in enumerate(nb['cells']):
            if c['cell_type'] == 'markdown':
                s = _src(c)
                math = math or _has_math(s)
                n_img += len(re.findall(r'!\[[^\]]*\]\([^)]+\)|<img\s', s))
                continue
            if _hidden(c): continue
            for o in c.get('outputs', []):
                data = o.get('data', {})
                kinds = [m for m in data if m.startswith('image/')]
                if kinds:
                    n_img += 1
                    m = next((m for m in ('image/png', 'image/jpeg', 'image/gif') if m in data), None)
                    if m:
                        b = data[m]
                        hashes.append((k, hashlib.sha256(base64.b64decode(b if isinstance(b, str) else ''.join(b))).hexdigest()))
                v = data.get('application/vnd.jupyter.widget-view+json')
                if v and v.get('model_id') in state: views += 1
                md = data.get('text/markdown')
                if md and _has_math(md if isinstance(md, str) else ''.join(md)): math = True
        out[(rel.parent / page_name(rel)).as_posix()] = dict(notebook=rel.as_posix(), images=n_img, hashes=hashes, math=math, widgets=views)
    return out


# ---- a local server for the site ----------------------------------------------------------------------------------

class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass


class Server:
    "The site folder served on 127.0.0.1 at a free port, in a thread (a context manager)"
    def __init__(self, folder): self.folder = str(folder)

    def __enter__(self):
        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(_Quiet, directory=self.folder))
        self.url = f'http://127.0.0.1:{self.httpd.server_address[1]}/'
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *a):
        self.httpd.shutdown(); self.httpd.server_close()


# ---- the browser checks -------------------------------------------------------------------------------------------

_JS_IMAGES = """async (sel) => {
  const root = document.querySelector(sel) || document.body;
  const imgs = [...document.images];
  imgs.forEach(i => { i.loading = 'eager'; });
  await Promise.all(imgs.map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; setTimeout(r, 10000); })));
  return imgs.map(i => ({src: i.currentSrc || i.src, w: i.naturalWidth, shown: i.getBoundingClientRect().width,
                         inArticle: root.contains(i)}));
}"""

_JS_MATH = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await Promise.race([MathJax.startup.promise, new Promise(r => setTimeout(r, 30000))]);
    if (MathJax.typesetPromise) await Promise.race([MathJax.typesetPromise(), new Promise(r => setTimeout(r, 30000))]);
  }
  const root = (document.querySelector('article') || document.body).cloneNode(true);
  root.querySelectorAll('pre, code, script, style, textarea, mjx-container, mjx-assistive-mml, .highlight, .MathJax').forEach(e => e.remove());
  return {containers: document.querySelectorAll('mjx-container').length,
          errors: [...document.querySelectorAll('mjx-merror, mjx-container [data-mjx-error]')].map(e => e.getAttribute('data-mjx-error') || e.textContent).slice(0, 5),
          text: root.textContent, mathjax: !!window.MathJax};
}"""

# what the page shows outside code inputs (outputs included): a path of the machine the book ran on, or a markdown
# table left as text (a `|` inside a cell splits it, and the whole table shows as pipes)
_JS_SHOWN_TEXT = """() => {
  const root = (document.querySelector('article') || document.body).cloneNode(true);
  root.querySelectorAll('div.cell_input, script, style, textarea').forEach(e => e.remove());
  const prose = root.cloneNode(true);   // a table printed as text in an output (pre) is meant as text
  prose.querySelectorAll('pre, code').forEach(e => e.remove());
  return {all: root.textContent, prose: prose.textContent};
}"""
# a path ends at white space, a quote or a `|` (text of adjacent elements runs together in textContent)
_re_machine_path = re.compile(r'(?<![\w.~])(?:/tmp/|/var/folders/|/root/|/home/[\w.-]+/|/Users/[\w.-]+/|[A-Z]:\\Users\\)'
                              r'[^\s\'"|]*|[^\s\'"|]*site-packages/[^\s\'"|]*')
_re_raw_table = re.compile(r'^[ \t]*\|?(?:[ \t]*:?-{3,}:?[ \t]*\|){2,}', re.M)


def shown_problems(text, prose=None, root=ROOT):
    ("Machine paths in `text` (a page's text outside code inputs) and markdown tables left as pipes in `prose` "
     "(that text outside pre and code too; default `text`)")
    paths = _re_machine_path.findall(text) + ([str(root)] if str(root) in text else [])
    return ([f'a path of the build machine in the text: {sorted(set(paths))[:3]}'] if paths else []) + \
           (['a markdown table shown as raw text (pipes and dashes)']
            if _re_raw_table.search(text if prose is None else prose) else [])


_re_raw_tex = re.compile(r'\$\$|\\\(|\\\)|\\\[|\\\]|\\begin\{|(?<![\w$])\$[^\s$][^$\n]{0,200}?[^\s$\\]\$(?![\w$])|(?<![\w$])\$[^\s$]\$(?![\w$])')


class Report:
    def __init__(self): self.problems, self.pages, self.screens, self.expected = [], {}, [], {}

    def add(self, msg):
        if msg not in self.problems: self.problems.append(msg)

    def __bool__(self): return not self.problems

    def __str__(self):
        head = f"{len(self.pages)} pages checked, {len(self.problems)} problems"
        return head + ''.join(f'\n  - {p}' for p in self.problems)


def check_site(site, nbs=None, screens=None, timeout_ms=60000, pages=None):
    """Run every check on the site folder `site` against the notebooks in `nbs`; returns a `Report`.
    `pages`: visit only these (e.g. ['index.html']) and follow no links; links to pages not visited are only fetched"""
    from playwright.sync_api import sync_playwright
    site, nbs = Path(site), Path(nbs or ROOT / 'nbs')
    exp = expectations(nbs)
    rep = Report()
    rep.expected = exp
    if screens:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from docs import claim_dir   # empties only a folder of its own, never one of yours
        screens = claim_dir(screens, '--screens')
    with Server(site) as srv, sync_playwright() as pw:
        base = srv.url
        browser = launch(pw)
        try:
            ctx = browser.new_context(viewport={'width': 1280, 'height': 900}, service_workers='block')
            ctx.set_default_timeout(timeout_ms)
            cur = {'page': None}

            def route(r):
                u = r.request.url
                if u.startswith(base) or u.startswith(('data:', 'blob:', 'about:')): return r.continue_()
                rep.add(f'{cur["page"]}: request to another host blocked: {u[:160]}')
                r.abort()
            ctx.route('**/*', route)
            page = ctx.new_page()
            page.on('pageerror', lambda e: rep.add(f'{cur["page"]}: JavaScript error: {str(e)[:300]}'))
            page.on('console', lambda m: m.type == 'error' and not m.text.startswith('Failed to load resource') and rep.add(f'{cur["page"]}: console error: {m.text[:300]}'))
            page.on('requestfailed', lambda r: r.url.startswith(base) and rep.add(f'{cur["page"]}: request failed: {r.url[len(base):]} ({r.failure})'))
            page.on('response', lambda r: r.url.startswith(base) and r.status >= 400 and rep.add(f'{cur["page"]}: HTTP {r.status} for {r.url[len(base):]}'))

            ids, links, done = {}, [], set()
            todo = list(dict.fromkeys(pages or [p if p.endswith('.html') else f'{p}.html' for p in exp]))
            # screenshots: the home page, then the first page (in book order) showing each of these
            shots = {'home': None, 'figure': 'article img', 'math': 'article mjx-container[display="true"]',
                     'showdoc': '.tag_nbdev-showdoc', 'widget': 'article .jupyter-widgets'}
            while todo:
                name = todo.pop(0)
                if name in done: continue
                done.add(name)
                cur['page'] = name
                want = exp.get(name)
                try: resp = page.goto(base + name, wait_until='load')
                except Exception as e:
                    rep.add(f'{name}: did not load: {str(e)[:200]}'); continue
                if resp is None or resp.status != 200:
                    rep.add(f'{name}: page missing (HTTP {resp.status if resp else "?"})' + (f", the page of {want['notebook']}" if want else ''))
                    continue
                info = {}
                imgs = page.evaluate(_JS_IMAGES, 'article')
                for im in imgs:
                    if im['w'] == 0: rep.add(f'{name}: image did not load: {im["src"][len(base):] if im["src"].startswith(base) else im["src"][:80]}')
                shown = [im for im in imgs if im['inArticle'] and im['w'] > 0]
                # a figure drawn for the column (tests/test_book_style.py: 8 pt text is 11 px at full size)
                # loses legibility when the page shrinks it: below 90% its smallest text is under 9 px
                for im in shown:
                    if im['shown'] < 0.9 * im['w'] and im['w'] > 100:
                        rep.add(f"{name}: a figure shown at {100 * im['shown'] / im['w']:.0f}% of its size, "
                                f"its text too small to read: {im['src'].rsplit('/', 1)[-1][:60]}")
                info['images'] = len(shown)
                math = page.evaluate(_JS_MATH)
                info['math'] = math['containers']
                raw = _re_raw_tex.findall(math['text'])
                if raw: rep.add(f'{name}: raw TeX in the text (math not typeset): {raw[:3]}')
                if math['errors']: rep.add(f'{name}: MathJax errors: {math["errors"]}')
                shown_text = page.evaluate(_JS_SHOWN_TEXT)
                for msg in shown_problems(shown_text['all'], shown_text['prose']): rep.add(f'{name}: {msg}')
                # a shown code cell wider than the column is cut at its right edge (the book's limit: 100 characters)
                cut = page.evaluate("() => [...document.querySelectorAll('article div.cell_input pre')]"
                                    ".filter(p => p.scrollWidth > p.clientWidth + 1).length")
                if cut: rep.add(f'{name}: {cut} code cell(s) wider than the column, cut at the right edge')
                if want:
                    if want['images'] > len(shown):
                        rep.add(f"{name}: shows {len(shown)} loaded images, {want['notebook']} has {want['images']} (figures missing)")
                    if want['hashes']:
                        got = set()
                        for im in shown:
                            if im['src'].startswith(base):
                                r = ctx.request.get(im['src'])
                                if r.ok: got.add(hashlib.sha256(r.body()).hexdigest())
                            elif im['src'].startswith('data:'):
                                got.add(hashlib.sha256(base64.b64decode(im['src'].split(',', 1)[1])).hexdigest())
                        for cell, h in want['hashes']:
                            if h not in got: rep.add(f"{name}: the figure of {want['notebook']} cell {cell} is not on the page")
                    if want['math'] and not math['containers']:
                        rep.add(f"{name}: {want['notebook']} has math but the page has no typeset math (MathJax {'loaded' if math['mathjax'] else 'not loaded'})")
                    if want['widgets']:
                        try:   # each saved view renders as (at least) one .jupyter-widgets element
                            page.wait_for_function('n => document.querySelectorAll("article .jupyter-widgets").length >= n',
                                                   arg=want['widgets'], timeout=30000)
                        except Exception: pass
                        info['widgets'] = page.locator('article .jupyter-widgets').count()
                        if info['widgets'] < want['widgets']:
                            rep.add(f"{name}: {want['notebook']} has {want['widgets']} saved widget views, {info['widgets']} rendered")
                ids[name] = set(page.evaluate("() => [...document.querySelectorAll('[id]')].map(e => e.id).concat([...document.querySelectorAll('a[name]')].map(e => e.name))"))
                for href in page.evaluate("() => [...document.querySelectorAll('a[href]')].map(a => a.href)"):
                    if not href.startswith(base): continue
                    target, frag = urldefrag(href)
                    rel = unquote(urlparse(target).path).lstrip('/') or 'index.html'
                    if rel.endswith('/'): rel += 'index.html'
                    links.append((name, rel, frag, target))
                    if rel.endswith('.html') and rel not in done and not pages: todo.append(rel)
                for kind, sel in list(shots.items()) if screens else []:
                    if kind == 'home' and name != 'index.html': continue
                    if sel:
                        loc = page.locator(sel)
                        if name == 'index.html' or not loc.count(): continue
                        loc.first.scroll_into_view_if_needed()
                    f = screens / f"{kind}-{name.replace('/', '_').rsplit('.', 1)[0]}.png"
                    page.screenshot(path=str(f)); rep.screens.append(f)
                    del shots[kind]
                rep.pages[name] = info
            checked = {}
            for src, rel, frag, target in links:
                if rel in ids:
                    if frag and frag not in ids[rel]: rep.add(f'{src}: broken link to {rel}#{frag} (no such anchor)')
                elif rel in done: rep.add(f'{src}: broken link to {rel}')      # visited, did not load
                else:
                    if target not in checked:
                        r = ctx.request.get(target)
                        checked[target] = r.status
                    if checked[target] != 200: rep.add(f'{src}: broken link to {rel} (HTTP {checked[target]})')
        finally:
            browser.close()
    return rep


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('site', nargs='?', default=str(ROOT / '_site'))
    ap.add_argument('--nbs', default=str(ROOT / 'nbs'))
    ap.add_argument('--screens', default=str(ROOT / '_site_screens'))
    a = ap.parse_args()
    rep = check_site(a.site, a.nbs, a.screens)
    print(rep)
    for f in rep.screens: print('screenshot:', f)
    sys.exit(0 if rep else 1)

"""The widgets notebook (nbs/19_widgets.ipynb) as a live Voilà app, driven in headless Chromium by Playwright.

    python tools/voila_check.py [--screens _site_screens] [--full]   # exit 1 and the problems if the app fails

Voilà serves the notebook on 127.0.0.1 at a free port, started from the repository's root as README says (so that
it reads voila.json there), with a timeout on every cell (--VoilaExecutor.timeout) and, unless --full, IN_TEST=1,
so the notebook takes its quick path (one epoch on a subset, as under nbdev_test). The browser waits for the
explorer (the `interactive` of WeightExplorer.widget), checks that its `a` and `k` sliders render, that the page
shows no error or stderr output (a cell that failed or timed out included) and that it opened within `stall`
seconds, drags the `a` slider and waits for its readout, the drawing and the AUROC printed in the figure's title to
change. So that the title can be read, the kernel draws SVG with text kept as text (an IPython profile in a
temporary IPYTHONDIR); the drawing itself is the notebook's. Requests to any host other than the local server are
blocked and listed. The server is started in its own process group and stopped, with the kernels it started, by
PID in a finally block.
"""
import argparse, os, re, signal, socket, subprocess, sys, tempfile, time
from pathlib import Path
from urllib.parse import unquote
from urllib.error import HTTPError
from urllib.request import urlopen

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from sitecheck import launch  # noqa: E402

KERNEL_CONFIG = """c.InlineBackend.figure_formats = {'svg'}
c.InlineBackend.rc = {'svg.fonttype': 'none', 'figure.dpi': 72}
"""


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def descendants(pid):
    "PIDs of all processes below `pid` (from /proc)"
    kids = {}
    for p in Path('/proc').iterdir():
        if not p.name.isdigit(): continue
        try: ppid = int((p / 'stat').read_text().rsplit(')', 1)[1].split()[1])
        except (OSError, IndexError, ValueError): continue
        kids.setdefault(ppid, []).append(int(p.name))
    out, todo = [], [pid]
    while todo:
        for k in kids.get(todo.pop(), []): out.append(k); todo.append(k)
    return out


def _alive(pid):
    try:
        st = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0]
        return st != 'Z'
    except OSError: return False


def stop(proc, known=()):
    "Stop the server `proc` (its own process group) and every process it started, by PID: TERM, then KILL"
    pids = set(descendants(proc.pid)) | set(known)
    try: os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError: pass
    try: proc.wait(20)
    except subprocess.TimeoutExpired:
        try: os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError: pass
        proc.wait(10)
    for pid in pids:                # kernels run in sessions of their own: by PID
        if _alive(pid):
            try: os.kill(pid, signal.SIGTERM)
            except ProcessLookupError: pass
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive(p) for p in pids): time.sleep(0.2)
    for pid in pids:
        if _alive(pid):
            try: os.kill(pid, signal.SIGKILL)
            except ProcessLookupError: pass
    return [p for p in pids if _alive(p)]


def _svg_text(src):
    "Text of an <img> whose src is an SVG data URI (the figure's title with the AUROC), else ''"
    if not src.startswith('data:image/svg+xml'): return ''
    svg = unquote(src.split(',', 1)[1])
    return ' '.join(re.sub(r'<[^>]+>', ' ', t) for t in re.findall(r'<text[^>]*>.*?</text>', svg, re.S))


_JS_STATE = """(el) => {
  const sl = n => [...el.querySelectorAll('.widget-slider')].find(s => (s.querySelector('.widget-label') || {}).textContent.trim() === n);
  const a = sl('a'), k = sl('k');
  const imgs = [...el.querySelectorAll('.widget-output img')];
  const txt = [...el.querySelectorAll('.widget-output')].map(o => o.innerText).join('\\n');
  return {a: a ? a.querySelector('.widget-readout').textContent.trim() : null,
          k: k ? k.querySelector('.widget-readout').textContent.trim() : null,
          src: imgs.length ? imgs[0].src : null, n_img: imgs.length, text: txt};
}"""


_JS_ERRORS = """() => [...document.querySelectorAll('[data-mime-type="application/vnd.jupyter.stderr"]')]
                  .map(e => e.innerText.trim()).filter(t => t)"""
_ERROR_TEXT = re.compile(r'Cell execution timed out|There was an error when executing cell|Traceback \(most recent call last\)')


def page_errors(page):
    "Error and stderr outputs shown on the page, and any Voilà error text (a cell that timed out or failed)"
    found = [f'an error or stderr output on the page: {t[:300]}' for t in page.evaluate(_JS_ERRORS)]
    m = _ERROR_TEXT.search(page.inner_text('body'))
    if m and not found: found.append(f'the page says: {m.group(0)}')
    return found


def check_widgets_app(nb=ROOT / 'nbs' / '19_widgets.ipynb', screens=None, timeout=900, cell_timeout=600, log=print,
                      quick=True, # True: IN_TEST=1, the notebook's quick path; False: what `voila nbs/19_widgets.ipynb` runs
                      stall=240): # seconds to working sliders beyond which the app is reported stalled
    "Serve `nb` with Voilà, move `a`, and return (problems, facts)"
    from playwright.sync_api import sync_playwright
    nb = Path(nb).resolve()
    problems, facts = [], {}
    port = free_port()
    base = f'http://127.0.0.1:{port}/'
    tmp = tempfile.TemporaryDirectory(prefix='voila-check-')
    prof = Path(tmp.name) / 'ipython' / 'profile_default'
    prof.mkdir(parents=True)
    (prof / 'ipython_kernel_config.py').write_text(KERNEL_CONFIG)
    env = dict(os.environ, IPYTHONDIR=str(Path(tmp.name) / 'ipython'),
               JUPYTER_RUNTIME_DIR=str(Path(tmp.name) / 'runtime'), PYTHONUNBUFFERED='1')
    env.pop('IN_TEST', None)
    if quick: env['IN_TEST'] = '1'
    if not env.get('GRADSIM_DATA') and (ROOT.parent / 'shared' / 'data' / 'cifar10-jpeg.tar.gz').exists():
        env['GRADSIM_DATA'] = str(ROOT.parent / 'shared' / 'data' / 'cifar10-jpeg.tar.gz')
    logf = open(Path(tmp.name) / 'voila.log', 'w+')
    # from the repository's root, as README says, so that Voilà reads its voila.json (the kernel client it names)
    where = ROOT if nb.is_relative_to(ROOT) else nb.parent
    cmd = [sys.executable, '-m', 'voila', str(nb.relative_to(where)), '--no-browser', f'--port={port}', '--Voila.port_retries=0',
           '--Voila.ip=127.0.0.1', f'--VoilaExecutor.timeout={cell_timeout}', '--VoilaConfiguration.show_tracebacks=True',
           '--VoilaConfiguration.extension_denylist=["@jupyter-notebook/lab-extension"]']
    proc = subprocess.Popen(cmd, cwd=where, env=env, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
    facts['pid'] = proc.pid
    kernels = set()
    t0 = time.time()
    try:
        while True:                 # the server answers
            if proc.poll() is not None: raise RuntimeError(f'voila exited with {proc.returncode}')
            # not the notebook's own address: a request there starts a kernel that runs the whole notebook for nothing
            try:
                urlopen(base + 'api', timeout=5).close(); break
            except HTTPError: break   # any answer will do
            except Exception:
                if time.time() - t0 > 120: raise RuntimeError('voila did not answer within 120 s')
                time.sleep(1)
        log(f'voila (PID {proc.pid}) serving {nb.name} at {base}')
        with sync_playwright() as pw:
            browser = launch(pw)
            try:
                ctx = browser.new_context(viewport={'width': 1280, 'height': 1000})
                offsite = []

                def route(r):
                    u = r.request.url
                    if u.startswith(base) or u.startswith(('data:', 'blob:')): return r.continue_()
                    offsite.append(u); r.abort()
                ctx.route('**/*', route)
                page = ctx.new_page()
                errors = []
                page.on('pageerror', lambda e: errors.append(str(e)[:300]))
                page.goto(base, timeout=timeout * 1000)
                left = max(30, timeout - (time.time() - t0))
                # the page fills in as the kernel runs the notebook (training first): wait for the explorer
                inter = page.locator('.widget-interact').first
                inter.wait_for(timeout=left * 1000)
                kernels |= set(descendants(proc.pid))
                page.wait_for_function("""() => { const el = document.querySelector('.widget-interact');
                    return el && el.querySelectorAll('.widget-slider').length >= 2 && el.querySelector('.widget-output img'); }""",
                                       timeout=120000)
                facts['ready_s'] = round(time.time() - t0)
                if facts['ready_s'] > stall:   # no cell of the notebook takes this long: a wait that missed its message
                    problems.append(f"the app took {facts['ready_s']} s to open, over {stall} s: a stalled cell (see voila.json)")
                # Voilà shows the page once every cell has run: an error in any cell, or a timed-out one, is on it now
                problems += page_errors(page)
                before = inter.evaluate(_JS_STATE)
                facts['before'] = {'a': before['a'], 'k': before['k'], 'title': _svg_text(before['src'] or '')[:300]}
                if before['a'] is None: problems.append('the explorer has no slider labelled a')
                if before['k'] is None: problems.append('the explorer has no slider labelled k')
                if not before['src']: problems.append('the explorer shows no drawing')
                plot = inter.locator('.widget-output img').first
                shot_before = plot.screenshot()
                if screens:
                    Path(screens).mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(Path(screens) / 'voila-before.png'))
                # drag the a slider's handle to the right, as a person would
                handle = inter.locator('.widget-slider', has=page.locator('.widget-label', has_text=re.compile(r'^a$'))).locator('.noUi-handle').first
                box = handle.bounding_box()
                page.mouse.move(box['x'] + box['width'] / 2, box['y'] + box['height'] / 2)
                page.mouse.down()
                page.mouse.move(box['x'] + box['width'] / 2 + 60, box['y'] + box['height'] / 2, steps=8)
                page.mouse.up()
                try:
                    page.wait_for_function("""([a0, src0]) => { const el = document.querySelector('.widget-interact');
                        const s = [...el.querySelectorAll('.widget-slider')].find(s => s.querySelector('.widget-label').textContent.trim() === 'a');
                        const img = el.querySelector('.widget-output img');
                        return s.querySelector('.widget-readout').textContent.trim() !== a0 && img && img.src !== src0; }""",
                                           arg=[before['a'], before['src']], timeout=120000)
                except Exception:
                    problems.append('moving the a slider did not change its readout and the drawing within 120 s')
                page.wait_for_timeout(500)
                after = inter.evaluate(_JS_STATE)
                facts['after'] = {'a': after['a'], 'k': after['k'], 'title': _svg_text(after['src'] or '')[:300]}
                shot_after = plot.screenshot()
                if screens: page.screenshot(path=str(Path(screens) / 'voila-after.png'))
                if after['a'] == before['a']: problems.append(f"the a readout stayed {before['a']}")
                if after['k'] != before['k']: problems.append(f"k changed from {before['k']} to {after['k']} when only a moved")
                if after['src'] == before['src']: problems.append('the drawing (image data) did not change')
                if shot_after == shot_before: problems.append('the drawing looks the same on screen')
                au = lambda t: re.search(r'AUROC\s+([0-9.]+)', t)
                tb, ta = au(facts['before']['title'] + before['text']), au(facts['after']['title'] + after['text'])
                if not (tb and ta): problems.append('no AUROC printed with the drawing')
                else:
                    facts['auroc'] = (tb.group(1), ta.group(1))
                    if tb.group(1) == ta.group(1): problems.append(f'the AUROC stayed {tb.group(1)} when a moved')
                    am = re.search(r'a = ([0-9.]+)', facts['after']['title'])
                    if am and after['a'] and float(am.group(1)) != float(after['a']):
                        problems.append(f"the drawing says a = {am.group(1)}, the slider {after['a']}")
                facts['offsite_blocked'] = sorted(set(offsite))
                facts['page_errors'] = errors
                if errors: problems += [f'JavaScript error: {e}' for e in errors]
            finally:
                browser.close()
    except Exception as e:
        problems.append(f'{type(e).__name__}: {e}')
    finally:
        kernels |= set(descendants(proc.pid))
        left = stop(proc, kernels)
        facts['stopped'] = proc.poll() is not None and not left
        if left: problems.append(f'processes left running after stop: {left}')
        logf.seek(0)
        facts['log_tail'] = logf.read()[-3000:]
        logf.close()
        tmp.cleanup()
    return problems, facts


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--nb', default=str(ROOT / 'nbs' / '19_widgets.ipynb'))
    ap.add_argument('--screens', default=str(ROOT / '_site_screens'))
    ap.add_argument('--timeout', type=int, default=900)
    ap.add_argument('--full', action='store_true', help="run the notebook as `voila nbs/19_widgets.ipynb` does, not its quick path")
    a = ap.parse_args()
    problems, facts = check_widgets_app(a.nb, a.screens, a.timeout, quick=not a.full)
    for k, v in facts.items():
        if k != 'log_tail': print(f'{k}: {v}')
    if problems:
        print('voila log:\n' + facts.get('log_tail', ''))
        print('PROBLEMS:\n' + '\n'.join(f'  - {p}' for p in problems))
    sys.exit(1 if problems else 0)

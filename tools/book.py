"""Re-execute the book: run notebooks in nbs/ in place, in their full (documented) configuration, and keep the outputs.

    python tools/book.py                       # every notebook, in book order
    python tools/book.py 08_table1 10_fig1     # some of them (names with or without .ipynb)
    python tools/book.py --timeout 900         # seconds per cell (default 1800)

A notebook is executed by a fresh kernel from nbs/ with IN_TEST unset, so experiment notebooks read the committed runs
in results/runs/ (and train, with a progress bar, any run that is missing). A notebook whose execution fails is left
as it was, and the command exits 1 naming it. Outputs are then normalised by `nbdev_clean`, which keeps them.
Every cell has a time limit: a stalled widget can otherwise hang the kernel runner (jupyter/nbclient#312).
"""
import argparse, os, re, subprocess, sys, time
from pathlib import Path
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT / 'nbs'


def notebooks(names):
    "The notebooks to run: the ones named (with or without .ipynb), or every one in nbs/ in book order (index first)"
    if not names: return sorted(NBS.glob('*.ipynb'), key=lambda p: (p.stem != 'index', p.name))
    paths = []
    for n in names:
        p = NBS / (n if n.endswith('.ipynb') else n + '.ipynb')
        if not p.exists(): sys.exit(f"book.py: no notebook {p.relative_to(ROOT)}; the names are those in nbs/")
        paths.append(p)
    return paths


def execute(path, timeout):
    "Run one notebook in place; on failure leave the file untouched and return one line saying why"
    try: nb = nbformat.read(path, as_version=4)
    except Exception as e:   # not JSON, or not a notebook: say so, and go on with the others
        return f"not a readable notebook ({type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}); fix or restore it (git checkout)"
    # 'immediate': kill the kernel when done instead of asking it to stop, a request a kernel with live widgets can leave unanswered
    client = NotebookClient(nb, timeout=timeout, kernel_name='python3', resources={'metadata': {'path': str(NBS)}},
                            store_widget_state=True, shutdown_kernel='immediate')
    i = 0
    try:
        with client.setup_kernel():
            for i, cell in enumerate(nb.cells): client.execute_cell(cell, i)
            client.set_widgets_metadata()
    except CellTimeoutError:   # its message is the cell's source between rules of dashes: name the cell instead
        return f"cell {i} (id {nb.cells[i].get('id')}) ran past --timeout {timeout} s"
    except Exception as e:   # the failing line and the error, without the colour codes of the kernel's traceback
        lines = [re.sub(r'\x1b\[[0-9;]*m', '', l) for l in str(e).strip().splitlines()]
        lines = [l for l in lines if l.strip(' -')] or [type(e).__name__]   # not the rules of dashes around the cell
        where = [l.strip() for l in lines if l.lstrip().startswith('---->')]
        return f"cell {i}: {lines[-1]}{' at ' + where[-1] if where else ''}"
    nbformat.write(nb, path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('names', nargs='*', help='notebooks to run (default: all of nbs/)')
    p.add_argument('--timeout', type=int, default=1800, help='seconds allowed for each cell (default 1800)')
    args = p.parse_args(argv)
    if args.timeout < 1: sys.exit('book.py: --timeout must be at least 1 second')
    os.environ.pop('IN_TEST', None)   # the full configuration, never nbdev_test's quick one
    data = ROOT.parent / 'shared' / 'data' / 'cifar10-jpeg.tar.gz'
    if 'GRADSIM_DATA' not in os.environ and data.exists(): os.environ['GRADSIM_DATA'] = str(data)
    failed = []
    for path in notebooks(args.names):
        t = time.time()
        err = execute(path, args.timeout)
        print(f"{path.name}: {'FAILED: ' + err if err else 'ok'} ({time.time() - t:.0f} s)", flush=True)
        if err: failed.append(path.name)
        else: subprocess.run(['nbdev_clean', '--fname', str(path)], check=True, cwd=ROOT)
    if failed: sys.exit(f"book.py: {len(failed)} notebook(s) failed and were left unchanged: {', '.join(failed)}")


if __name__ == '__main__': main()

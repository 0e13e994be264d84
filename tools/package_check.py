"""Check that the package builds and installs as a user would get it, without touching the checkout:

    python tools/package_check.py

1. `python -m build` makes an sdist and a wheel, from a copy of the packaging files in a temporary folder (the
   wheel is built from the sdist, so a file the sdist forgets breaks it here, not on a user's machine);
2. `twine check` passes their metadata (README as the long description, classifiers, dependencies);
3. a fresh virtual environment installs the wheel, finds its declared dependencies among this machine's packages
   (`--system-site-packages`, no index: torch is never downloaded again), imports gradsim_nb from the wheel,
   not from the checkout, and runs each console script's `--help`.
Exits 1 with the failing step's output if any step fails. The temporary folder is removed in every case.
"""
import configparser, shutil, subprocess, sys, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEPS = """
from importlib.metadata import requires, version, PackageNotFoundError
from packaging.requirements import Requirement
def ok(r):
    try: return r.specifier.contains(version(r.name), prereleases=True)
    except PackageNotFoundError: return False
bad = [str(r) for r in map(Requirement, requires('gradsim_nb')) if not r.marker and not ok(r)]
if bad: raise SystemExit('not installed: ' + ', '.join(bad))
"""
FILES = ['setup.py', 'settings.ini', 'pyproject.toml', 'README.md', 'LICENSE', 'MANIFEST.in']


def run(step, cmd, cwd):
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if r.returncode: sys.exit(f"package: {step} failed ({' '.join(map(str, cmd))}):\n{(r.stdout + r.stderr)[-3000:]}")
    return r.stdout


def main():
    cfg = configparser.ConfigParser(delimiters=['=']); cfg.read(ROOT / 'settings.ini')
    scripts = [s.split('=')[0] for s in cfg['DEFAULT']['console_scripts'].split()]
    with tempfile.TemporaryDirectory(prefix='gradsim-package-') as tmp:
        src, dist, env = Path(tmp) / 'src', Path(tmp) / 'dist', Path(tmp) / 'venv'
        src.mkdir()
        for f in FILES: shutil.copy2(ROOT / f, src / f)
        shutil.copytree(ROOT / 'gradsim_nb', src / 'gradsim_nb', ignore=shutil.ignore_patterns('__pycache__'))
        run('build', [sys.executable, '-m', 'build', '--no-isolation', '--outdir', dist, src], src)
        built = sorted(p.name for p in dist.iterdir())
        if not any(n.endswith('.whl') for n in built) or not any(n.endswith('.tar.gz') for n in built):
            sys.exit(f"package: build made {built}, not an sdist and a wheel")
        run('twine check', [sys.executable, '-m', 'twine', 'check', '--strict', *sorted(dist.iterdir())], tmp)
        run('virtual environment', [sys.executable, '-m', 'venv', '--system-site-packages', env], tmp)
        py = env / 'bin' / 'python'
        wheel = next(dist.glob('*.whl'))
        # --no-deps: pip would re-resolve torch's own CUDA dependencies from an index; ours are checked against what is installed
        run('install', [py, '-m', 'pip', 'install', '--no-index', '--no-deps', '--quiet', wheel], tmp)
        run('dependencies', [py, '-c', DEPS], tmp)
        where = run('import', [py, '-c', 'import gradsim_nb; print(gradsim_nb.__file__)'], tmp).strip()
        if not where.startswith(str(env)): sys.exit(f"package: gradsim_nb was imported from {where}, not from the installed wheel")
        for s in scripts: run(f'{s} --help', [env / 'bin' / s, '--help'], tmp)
    print(f"package: {', '.join(built)} built, twine check passed, the wheel installs in a fresh environment "
          f"and runs {', '.join(scripts)}")


if __name__ == '__main__': main()

"Issue 30: a fork tests and publishes itself: the workflows pass GitHub's schema, run README's commands, and the check catches a broken one"
import subprocess, shutil
from pathlib import Path
import pytest
ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / '.github' / 'workflows'


def lint(*files):
    return subprocess.run(['check-jsonschema', '--builtin-schema', 'vendor.github-workflows', *map(str, files)], capture_output=True, text=True)


def test_the_workflows_pass_the_schema_and_run_readmes_commands():
    assert lint(WORKFLOWS / 'test.yaml', WORKFLOWS / 'deploy.yaml').returncode == 0
    test, deploy = (WORKFLOWS / 'test.yaml').read_text(), (WORKFLOWS / 'deploy.yaml').read_text()
    assert 'run: bash tools/setup.sh' in test and 'run: bash tools/test.sh' in test and 'pull_request' in test
    assert 'run: bash tools/docs.sh' in deploy and 'actions/deploy-pages' in deploy and 'path: _site' in deploy
    readme = (ROOT / 'README.md').read_text()
    assert 'bash tools/setup.sh' in readme and 'bash tools/test.sh' in readme and '.github/workflows' in readme


@pytest.mark.parametrize('old, new', [('    runs-on: ubuntu-latest\n', ''), ('    steps:\n', '    stepz:\n'), ('on:\n', 'onn:\n')])
def test_the_check_catches_a_broken_workflow(tmp_path, old, new):
    broken = tmp_path / 'test.yaml'
    text = (WORKFLOWS / 'test.yaml').read_text()
    assert old in text
    broken.write_text(text.replace(old, new, 1))
    assert lint(broken).returncode != 0

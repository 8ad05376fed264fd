"""Tests for fidlens.data.datasets (image folders and ZIPs) and fidlens.data.zipbuild."""

from __future__ import annotations

import io
import json
import pickle
import shutil
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fidlens.data.datasets import ImageModeWarning, ImageSource, decode_image, open_image_source
from fidlens.core.errors import DatasetError
from fidlens.data.zipbuild import RESIZE_FILTERS, build_stylegan_zip, read_zip_metadata

W, H = 16, 12


def rgb_array(seed: int, w: int = W, h: int = H) -> np.ndarray:
    return np.random.RandomState(seed).randint(0, 256, size=(h, w, 3), dtype=np.uint8)


def save(path: Path, arr: np.ndarray, fmt: str | None = None, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(arr) if mode is None else Image.fromarray(arr, mode=mode)
    img.save(path, format=fmt)
    return path


def make_folder(root: Path, n: int, start_seed: int = 0) -> list[np.ndarray]:
    arrays = [rgb_array(start_seed + i) for i in range(n)]
    for i, arr in enumerate(arrays):
        save(root / f"im{i:03d}.png", arr)
    return arrays


def assert_one_line_error(excinfo: pytest.ExceptionInfo, *fragments: str) -> None:
    msg = str(excinfo.value)
    assert "\n" not in msg
    for frag in fragments:
        assert frag in msg, f"{frag!r} not in {msg!r}"


def collate_list(batch):
    return batch


# ---------------------------------------------------------------------------------------------
# Folders


def test_folder_sorted_order_nested_and_mixed_case(tmp_path):
    layout = ["b.PNG", "a.png", "sub/z.Jpg", "sub/deeper/c.png", "A_upper.png", "c.jpeg"]
    for k, rel in enumerate(layout):
        save(tmp_path / rel, rgb_array(k))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub" / "data.csv").write_text("1,2")
    src = open_image_source(tmp_path)
    expected = sorted(layout)
    assert src.names == expected
    assert src.names[0] == "A_upper.png"  # plain string sort: uppercase first
    assert len(src) == len(layout)
    assert src.kind == "folder"
    assert isinstance(src, ImageSource)
    # Each index returns the image stored under that name.
    i = src.names.index("a.png")
    np.testing.assert_array_equal(src[i], rgb_array(layout.index("a.png")))


def test_folder_hidden_files_skipped(tmp_path):
    save(tmp_path / "a.png", rgb_array(0))
    save(tmp_path / ".hidden.png", rgb_array(1))
    save(tmp_path / ".ipynb_checkpoints" / "a.png", rgb_array(2))
    assert open_image_source(tmp_path).names == ["a.png"]


@pytest.mark.parametrize(
    "ext,fmt,lossless",
    [
        ("png", "PNG", True),
        ("jpg", "JPEG", False),
        ("jpeg", "JPEG", False),
        ("bmp", "BMP", True),
        ("ppm", "PPM", True),
        ("webp", "WEBP", False),
        ("tif", "TIFF", True),
        ("tiff", "TIFF", True),
    ],
)
def test_folder_extensions_rgb(tmp_path, ext, fmt, lossless):
    arr = rgb_array(7)
    save(tmp_path / f"img.{ext}", arr, fmt)
    src = open_image_source(tmp_path)
    assert src.names == [f"img.{ext}"]
    out = src[0]
    assert out.dtype == np.uint8 and out.shape == (H, W, 3) and out.flags["C_CONTIGUOUS"]
    if lossless:
        np.testing.assert_array_equal(out, arr)
    else:
        assert np.abs(out.astype(int) - arr.astype(int)).mean() < 60


@pytest.mark.parametrize(
    "ext,fmt", [("png", "PNG"), ("pgm", "PPM"), ("bmp", "BMP"), ("tif", "TIFF")]
)
def test_greyscale_repeated_to_three_channels(tmp_path, ext, fmt):
    grey = np.random.RandomState(3).randint(0, 256, size=(H, W), dtype=np.uint8)
    save(tmp_path / f"g.{ext}", grey, fmt)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # greyscale is silent
        out = open_image_source(tmp_path)[0]
    assert out.shape == (H, W, 3) and out.dtype == np.uint8
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], grey)


def test_one_bit_image_is_silent_and_black_or_white(tmp_path):
    bits = np.random.RandomState(4).rand(H, W) > 0.5
    Image.fromarray(bits).convert("1").save(tmp_path / "b.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = open_image_source(tmp_path)[0]
    np.testing.assert_array_equal(out[:, :, 0], np.where(bits, 255, 0))
    np.testing.assert_array_equal(out[:, :, 0], out[:, :, 2])


def test_rgba_converted_with_single_warning(tmp_path):
    for i in range(3):
        rgba = np.concatenate([rgb_array(i), np.full((H, W, 1), 128, np.uint8)], axis=2)
        save(tmp_path / f"a{i}.png", rgba)
    src = open_image_source(tmp_path)
    with pytest.warns(ImageModeWarning) as record:
        out = [src[i] for i in range(len(src))]
    mode_warnings = [w for w in record if issubclass(w.category, ImageModeWarning)]
    assert len(mode_warnings) == 1
    assert "RGBA" in str(mode_warnings[0].message)
    for i, arr in enumerate(out):
        assert arr.shape == (H, W, 3) and arr.dtype == np.uint8
        np.testing.assert_array_equal(arr, rgb_array(i))  # alpha dropped, colour kept


def test_sixteen_bit_greyscale_scaled(tmp_path):
    values = np.array([[0, 257, 65535, 32896]], dtype=np.uint16).repeat(4, axis=0)
    save(tmp_path / "d.png", values)
    with pytest.warns(ImageModeWarning):
        out = open_image_source(tmp_path)[0]
    np.testing.assert_array_equal(out[0, :, 0], [0, 1, 255, 128])
    np.testing.assert_array_equal(out[:, :, 0], out[:, :, 1])


def test_max_images_first_k_and_too_many(tmp_path):
    make_folder(tmp_path, 6)
    src = open_image_source(tmp_path, max_images=3)
    assert src.names == ["im000.png", "im001.png", "im002.png"]
    assert open_image_source(tmp_path, max_images=100).names == open_image_source(tmp_path).names
    assert len(open_image_source(tmp_path, max_images=100)) == 6
    d = src.describe()
    assert d["kind"] == "folder" and d["num_images"] == 3 and d["path"] == str(tmp_path)
    assert d["selection"] == {"max_images": 3, "subset_seed": None}


def test_seeded_subset(tmp_path):
    make_folder(tmp_path, 20)
    all_names = open_image_source(tmp_path).names
    a = open_image_source(tmp_path, max_images=5, subset_seed=1)
    b = open_image_source(tmp_path, max_images=5, subset_seed=1)
    c = open_image_source(tmp_path, max_images=5, subset_seed=2)
    assert a.names == b.names
    assert a.names != c.names
    assert a.names == sorted(a.names) and len(set(a.names)) == 5
    expected_idx = sorted(np.random.RandomState(1).choice(20, 5, replace=False))
    assert a.names == [all_names[i] for i in expected_idx]
    assert a.names != all_names[:5]


def test_max_images_must_be_positive(tmp_path):
    make_folder(tmp_path, 2)
    with pytest.raises(DatasetError) as ei:
        open_image_source(tmp_path, max_images=0)
    assert_one_line_error(ei, "max_images")


# ---------------------------------------------------------------------------------------------
# ZIPs


def test_zip_round_trip(tmp_path):
    folder = tmp_path / "imgs"
    arrays = make_folder(folder, 5)
    dest = tmp_path / "out" / "ds.zip"
    meta = build_stylegan_zip(folder, dest, progress=False)
    src = open_image_source(dest)
    assert src.kind == "zip"
    assert src.names == [f"00000/img{i:08d}.png" for i in range(5)]
    for i, arr in enumerate(arrays):
        np.testing.assert_array_equal(src[i], arr)
    assert src.labels() is None
    assert meta["num_images"] == 5
    assert meta["resolution"] is None and meta["resize_filter"] is None
    assert meta["center_crop"] is False
    assert meta["source"] == str(folder)
    assert meta["source_content_hash"] == open_image_source(folder).content_hash()
    assert read_zip_metadata(dest) == meta
    with zipfile.ZipFile(dest) as zf:
        infos = zf.infolist()
        assert all(info.compress_type == zipfile.ZIP_STORED for info in infos)
        ds = json.loads(zf.read("dataset.json"))
    assert ds["labels"] is None
    # No leftover temp files next to the destination.
    assert sorted(p.name for p in dest.parent.iterdir()) == ["ds.zip"]


def test_zip_folder_index_rolls_over_at_1000(tmp_path):
    from fidlens.data.zipbuild import stylegan_name

    assert stylegan_name(0) == "00000/img00000000.png"
    assert stylegan_name(999) == "00000/img00000999.png"
    assert stylegan_name(1000) == "00001/img00001000.png"
    assert stylegan_name(69999) == "00069/img00069999.png"


def test_zip_resize_filters_and_metadata(tmp_path):
    folder = tmp_path / "imgs"
    for i in range(2):
        save(folder / f"{i}.png", rgb_array(i, w=24, h=18))
    outs = {}
    for name in ("lanczos", "nearest", "box"):
        dest = tmp_path / f"{name}.zip"
        meta = build_stylegan_zip(folder, dest, resolution=8, resize_filter=name, progress=False)
        assert meta["resolution"] == 8 and meta["resize_filter"] == name
        assert meta["center_crop"] is True
        assert read_zip_metadata(dest)["resize_filter"] == name
        src = open_image_source(dest)
        outs[name] = src[0]
        assert outs[name].shape == (8, 8, 3)
    assert not np.array_equal(outs["lanczos"], outs["nearest"])
    assert not np.array_equal(outs["box"], outs["nearest"])
    # The crop is centred: box-resizing the centred 18x18 square to 9x9 gives 2x2 block means.
    dest = tmp_path / "half.zip"
    build_stylegan_zip(folder, dest, resolution=9, resize_filter="box", progress=False)
    square = rgb_array(0, w=24, h=18)[:, 3:21].astype(float)
    expected = square.reshape(9, 2, 9, 2, 3).mean(axis=(1, 3))
    assert np.abs(open_image_source(dest)[0] - expected).max() <= 1


def test_zip_square_inputs_not_cropped(tmp_path):
    folder = tmp_path / "imgs"
    save(folder / "a.png", rgb_array(0, w=16, h=16))
    meta = build_stylegan_zip(folder, tmp_path / "o.zip", resolution=8, progress=False)
    assert meta["center_crop"] is False and meta["image_size"] == [8, 8]


def test_zip_labels_preserved(tmp_path):
    arrays = [rgb_array(i) for i in range(4)]
    src_zip = tmp_path / "labelled.zip"
    with zipfile.ZipFile(src_zip, "w") as zf:
        for i, arr in enumerate(arrays):
            buf = io.BytesIO()
            Image.fromarray(arr).save(buf, format="PNG")
            zf.writestr(f"x/{i}.png", buf.getvalue())
        labels = [[f"x/{i}.png", 10 + i] for i in range(4)]
        zf.writestr("dataset.json", json.dumps({"labels": labels}))
    src = open_image_source(src_zip)
    np.testing.assert_array_equal(src.labels(), [10, 11, 12, 13])
    assert src.labels().dtype == np.int64
    dest = tmp_path / "copy.zip"
    build_stylegan_zip(src_zip, dest, max_images=3, progress=False)
    out = open_image_source(dest)
    np.testing.assert_array_equal(out.labels(), [10, 11, 12])
    with zipfile.ZipFile(dest) as zf:
        ds = json.loads(zf.read("dataset.json"))
    assert ds["labels"] == [
        ["00000/img00000000.png", 10],
        ["00000/img00000001.png", 11],
        ["00000/img00000002.png", 12],
    ]
    # Subset of a labelled zip keeps the right labels.
    sub = open_image_source(src_zip, max_images=2, subset_seed=0)
    idx = sorted(np.random.RandomState(0).choice(4, 2, replace=False))
    np.testing.assert_array_equal(sub.labels(), [10 + i for i in idx])


def test_zip_without_dataset_json(tmp_path):
    src_zip = tmp_path / "plain.zip"
    with zipfile.ZipFile(src_zip, "w") as zf:
        for name in ["b.png", "a.png", "readme.txt"]:
            buf = io.BytesIO()
            Image.fromarray(rgb_array(len(name))).save(buf, format="PNG")
            zf.writestr(name, buf.getvalue())
    src = open_image_source(src_zip)
    assert src.names == ["a.png", "b.png"]
    assert src.labels() is None
    assert read_zip_metadata(src_zip) is None


# ---------------------------------------------------------------------------------------------
# Content hash


def test_content_hash(tmp_path):
    folder = tmp_path / "a"
    make_folder(folder, 4)
    h = open_image_source(folder).content_hash()
    assert len(h) == 64 and int(h, 16) >= 0
    assert open_image_source(folder).content_hash() == h

    moved = tmp_path / "elsewhere" / "b"
    shutil.copytree(folder, moved)
    assert open_image_source(moved).content_hash() == h

    assert open_image_source(folder, max_images=3).content_hash() != h
    assert (
        open_image_source(folder, max_images=2).content_hash()
        != open_image_source(folder, max_images=3).content_hash()
    )
    sub1 = open_image_source(folder, max_images=2, subset_seed=1).content_hash()
    sub2 = open_image_source(folder, max_images=2, subset_seed=5).content_hash()
    assert sub1 != sub2 and h not in (sub1, sub2)

    save(moved / "im001.png", rgb_array(99))  # change one file's bytes
    changed = open_image_source(moved).content_hash()
    assert changed != h

    save(folder / "zz_new.png", rgb_array(50))  # add a file
    added = open_image_source(folder).content_hash()
    assert added not in (h, changed)

    (folder / "zz_new.png").unlink()
    (folder / "im000.png").unlink()  # remove a file
    assert open_image_source(folder).content_hash() not in (h, added)


def test_content_hash_zip_stable_after_move(tmp_path):
    folder = tmp_path / "imgs"
    make_folder(folder, 3)
    z = tmp_path / "d.zip"
    build_stylegan_zip(folder, z, progress=False)
    h = open_image_source(z).content_hash()
    z2 = tmp_path / "moved" / "e.zip"
    z2.parent.mkdir()
    shutil.copy(z, z2)
    assert open_image_source(z2).content_hash() == h
    assert open_image_source(z, max_images=2).content_hash() != h


# ---------------------------------------------------------------------------------------------
# Errors


def test_error_missing_path(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(DatasetError) as ei:
        open_image_source(missing)
    assert_one_line_error(ei, "nope", "does not exist")


def test_error_empty_folder(tmp_path):
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    with pytest.raises(DatasetError) as ei:
        open_image_source(empty)
    assert_one_line_error(ei, "empty_dir", "no images found", ".png")


def test_error_folder_with_only_text(tmp_path):
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "a.txt").write_text("hello")
    (folder / "b.txt").write_text("world")
    with pytest.raises(DatasetError) as ei:
        open_image_source(folder)
    assert_one_line_error(ei, "texts", "no images found", ".jpg")


def test_error_not_a_zip(tmp_path):
    fake = tmp_path / "fake.zip"
    fake.write_text("this is not a zip archive at all")
    with pytest.raises(DatasetError) as ei:
        open_image_source(fake)
    assert_one_line_error(ei, "fake.zip", "not a readable ZIP archive")


def test_error_truncated_zip(tmp_path):
    folder = tmp_path / "imgs"
    make_folder(folder, 3)
    z = tmp_path / "cut.zip"
    build_stylegan_zip(folder, z, progress=False)
    data = z.read_bytes()
    z.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError) as ei:
        open_image_source(z)
    assert_one_line_error(ei, "cut.zip", "not a readable ZIP archive")


def test_error_zip_without_images(tmp_path):
    z = tmp_path / "noimgs.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("readme.txt", "nothing here")
        zf.writestr("dataset.json", json.dumps({"labels": None}))
    with pytest.raises(DatasetError) as ei:
        open_image_source(z)
    assert_one_line_error(ei, "noimgs.zip", "contains no images", "StyleGAN")


def test_error_truncated_png_in_folder(tmp_path):
    make_folder(tmp_path, 2)
    bad = save(tmp_path / "im001.png", rgb_array(5, w=64, h=64))
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    src = open_image_source(tmp_path)  # listing does not decode
    assert src[0].shape == (H, W, 3)
    with pytest.raises(DatasetError) as ei:
        src[1]
    assert_one_line_error(ei, "im001.png", "cannot decode", str(tmp_path))


def test_error_truncated_png_in_zip(tmp_path):
    z = tmp_path / "bad.zip"
    buf = io.BytesIO()
    Image.fromarray(rgb_array(1, w=64, h=64)).save(buf, format="PNG")
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("00000/img00000000.png", buf.getvalue()[:200])
    with pytest.raises(DatasetError) as ei:
        open_image_source(z)[0]
    assert_one_line_error(ei, "00000/img00000000.png", "bad.zip", "cannot decode")


def test_error_corrupt_jpeg(tmp_path):
    path = save(tmp_path / "photo.jpg", rgb_array(2, w=64, h=64), "JPEG")
    data = bytearray(path.read_bytes())
    path.write_bytes(bytes(data[:20]) + b"\x00" * 40)
    with pytest.raises(DatasetError) as ei:
        open_image_source(tmp_path)[0]
    assert_one_line_error(ei, "photo.jpg", "cannot decode")


def test_decode_image_direct_garbage():
    with pytest.raises(DatasetError) as ei:
        decode_image(b"garbage bytes", "x.png", "somewhere")
    assert_one_line_error(ei, "x.png", "somewhere")


def test_error_unknown_resize_filter(tmp_path):
    make_folder(tmp_path / "imgs", 1)
    dest = tmp_path / "o.zip"
    with pytest.raises(DatasetError) as ei:
        build_stylegan_zip(
            tmp_path / "imgs", dest, resolution=8, resize_filter="cubic", progress=False
        )
    assert_one_line_error(ei, "cubic", *RESIZE_FILTERS)
    assert not dest.exists()


def test_error_mismatched_sizes_without_resolution(tmp_path):
    folder = tmp_path / "imgs"
    save(folder / "a.png", rgb_array(0, w=16, h=16))
    save(folder / "b.png", rgb_array(1, w=16, h=12))
    dest = tmp_path / "o.zip"
    with pytest.raises(DatasetError) as ei:
        build_stylegan_zip(folder, dest, progress=False)
    assert_one_line_error(ei, "b.png", "--resolution")
    assert not dest.exists()
    assert list(tmp_path.glob("*.zip*")) == []  # atomic: no partial output left behind
    # With a resolution the same inputs work.
    meta = build_stylegan_zip(folder, dest, resolution=8, progress=False)
    assert meta["num_images"] == 2


# ---------------------------------------------------------------------------------------------
# Pickling and DataLoader workers


def test_pickle_zip_source_after_use(tmp_path):
    folder = tmp_path / "imgs"
    arrays = make_folder(folder, 3)
    z = tmp_path / "d.zip"
    build_stylegan_zip(folder, z, progress=False)
    src = open_image_source(z)
    np.testing.assert_array_equal(src[1], arrays[1])  # opens the handle
    clone = pickle.loads(pickle.dumps(src))
    np.testing.assert_array_equal(clone[0], arrays[0])
    np.testing.assert_array_equal(src[2], arrays[2])
    assert clone.names == src.names and clone.content_hash() == src.content_hash()
    folder_src = pickle.loads(pickle.dumps(open_image_source(folder)))
    np.testing.assert_array_equal(folder_src[0], arrays[0])


def test_dataloader_workers_over_zip(tmp_path):
    folder = tmp_path / "imgs"
    arrays = make_folder(folder, 5)
    z = tmp_path / "d.zip"
    build_stylegan_zip(folder, z, progress=False)
    src = open_image_source(z)
    src[0]  # handle opened in the parent before the workers fork
    loader = torch.utils.data.DataLoader(src, batch_size=2, num_workers=2, collate_fn=collate_list)
    got = [img for batch in loader for img in batch]
    assert len(got) == 5
    for a, b in zip(got, arrays):
        np.testing.assert_array_equal(a, b)

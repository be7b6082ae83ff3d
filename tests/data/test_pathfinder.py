"""LRA Pathfinder / Path-X: the real 32 x 32 files, small sets in the LRA layout written here, and our generator
checked by a flood fill written here."""

from collections import deque

import numpy as np
import pytest
import torch
from PIL import Image

from ssmkit.data.base import DataMissingError
from ssmkit.data.pathfinder import (
    generate_pathfinder,
    pathfinder_synthetic_task,
    pathfinder_task,
    pathx_task,
    read_metadata,
    read_png,
)


# ------------------------------------------------------------------------------------------ real files
def test_real_npz(shared_data):
    task = pathfinder_task(shared_data)  # auto: the npz (10000) rather than the 5000 PNGs
    assert task.info["source"].endswith("pathfinder32_cl14.npz")
    assert (len(task.train), len(task.val), len(task.test)) == (8000, 1000, 1000)
    assert task.d_input == 1 and task.l_max == 1024 and task.d_output == 2 and task.kind == "classify"
    labels = torch.cat([task.train.labels, task.val.labels, task.test.labels])
    assert torch.bincount(labels).tolist() == [5023, 4977]
    x, y = task.train[0]
    assert x.shape == (1024, 1) and x.dtype == torch.float32 and y.dtype == torch.long
    assert float(x.min()) >= 0 and float(x.max()) == 1.0
    xn, _ = pathfinder_task(shared_data, normalize=True).train[0]
    assert torch.allclose(xn, (x - 0.5) / 0.5)
    assert not set(pathfinder_task(shared_data, split_seed=1).test.labels.tolist()) - {0, 1}


def test_real_png_layout_matches_the_npz(shared_data):
    folder = shared_data / "pathfinder32" / "curv_contour_length_14"
    rows = read_metadata(folder / "metadata" / "0.npy")
    assert len(rows) == 5000 and rows[0][:2] == ("imgs/0", "sample_0.png")
    with np.load(shared_data / "pathfinder32" / "pathfinder32_cl14.npz") as z:
        x, y, batch = z["x"], z["y"], z["batch"]
    assert [r[2] for r in rows] == y[batch == 0].tolist()
    for k, (sub, name, _) in enumerate(rows):  # every PNG of the layout, pixel for pixel
        assert np.array_equal(read_png(folder / sub / name, 32), x[int(name[7:-4])]), name
        assert int(name[7:-4]) == k
    task = pathfinder_task(shared_data, source="images")
    assert (len(task.train), len(task.val), len(task.test)) == (4000, 500, 500)
    assert task.info["source"].endswith("curv_contour_length_14")
    xi, yi = task.test[0]
    path = task.test.paths[0]
    assert xi.shape == (1024, 1) and torch.equal(xi[:, 0], torch.from_numpy(x[int(path.stem[7:])].reshape(-1)) / 255)
    assert int(yi) == y[int(path.stem[7:])]


# ------------------------------------------------------------------------------------------ the LRA layout
def _write_layout(folder, resolution, n=10, batches=2, text_metadata=True, seed=0):
    """n images per batch in imgs/<batch>/sample_<i>.png with metadata/<batch>.npy (text, as the LRA release)."""
    rng = np.random.default_rng(seed)
    images, labels = {}, {}
    for b in range(batches):
        (folder / "imgs" / str(b)).mkdir(parents=True)
        (folder / "metadata").mkdir(exist_ok=True)
        rows = []
        for i in range(n):
            img = rng.integers(0, 256, (resolution, resolution), dtype=np.uint8)
            Image.fromarray(img).save(folder / "imgs" / str(b) / f"sample_{i}.png")
            label = int(rng.integers(2))
            rows.append([f"imgs/{b}", f"sample_{i}.png", str(i), str(label), "1.0", "14", "4", "2", "0.5", "1", "1"])
            images[(b, i)], labels[(b, i)] = img, label
        if text_metadata:
            (folder / "metadata" / f"{b}.npy").write_text("".join(" ".join(r) + "\n" for r in rows))
        else:
            np.save(folder / "metadata" / f"{b}.npy", np.array(rows))
    return images, labels


@pytest.mark.parametrize(
    "resolution,where,difficulty,text",
    [
        (64, "lra_release/pathfinder64/curv_baseline", "easy", True),
        (128, "lra_release/lra_release/pathfinder128/curv_contour_length_14", "hard", True),
        (256, "pathfinder256/curv_contour_length_9", "intermediate", False),
    ],
)
def test_lra_layout_at_each_resolution(tmp_path, resolution, where, difficulty, text):
    images, labels = _write_layout(tmp_path / where, resolution, n=5, batches=2, text_metadata=text)
    task = pathfinder_task(tmp_path, resolution=resolution, difficulty=difficulty)
    assert (len(task.train), len(task.val), len(task.test)) == (8, 1, 1) and task.l_max == resolution**2
    seen = 0
    for part in (task.train, task.val, task.test):
        for i in range(len(part)):
            path = part.paths[i]
            key = (int(path.parent.name), int(path.stem[7:]))
            x, y = part[i]
            assert x.shape == (resolution**2, 1) and int(y) == labels[key]
            assert torch.equal(x[:, 0], torch.from_numpy(images[key].reshape(-1)).float() / 255)
            seen += 1
    assert seen == 10


def test_pathx_is_pathfinder_at_128(tmp_path):
    _write_layout(tmp_path / "pathfinder128" / "curv_contour_length_14", 128, n=10, batches=1)
    task = pathx_task(tmp_path)
    assert task.name == "pathx" and task.l_max == 16384 and len(task.train) == 8
    with pytest.raises(DataMissingError, match="pathfinder128/curv_contour_length_9/metadata"):
        pathx_task(tmp_path, difficulty="intermediate")


def test_missing_and_bad_pathfinder_files(tmp_path):
    with pytest.raises(DataMissingError, match=r"pathfinder64/curv_contour_length_14/imgs/<batch>/sample_<i>.png"):
        pathfinder_task(tmp_path, resolution=64)
    with pytest.raises(ValueError, match="resolution must be one of"):
        pathfinder_task(tmp_path, resolution=48)
    with pytest.raises(ValueError, match="difficulty must be one of"):
        pathfinder_task(tmp_path, difficulty="medium")
    folder = tmp_path / "pathfinder32" / "curv_baseline"
    _write_layout(folder, 32, n=10, batches=1)
    (folder / "imgs" / "0" / "sample_3.png").unlink()
    with pytest.raises(ValueError, match=r"1 images listed in metadata/ are missing, e\.g\. .*sample_3.png"):
        pathfinder_task(tmp_path, difficulty="easy")
    (folder / "imgs" / "0" / "sample_3.png").write_bytes(b"\x89PNG truncated")
    task = pathfinder_task(tmp_path, difficulty="easy", source="images")
    parts = [task.train, task.val, task.test]
    part, i = next((p, k) for p in parts for k in range(len(p)) if p.paths[k].name == "sample_3.png")
    with pytest.raises(ValueError, match="sample_3.png: not a readable PNG"):
        part[i]
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(folder / "imgs" / "0" / "sample_3.png")
    with pytest.raises(ValueError, match=r"sample_3.png: expected a 32 x 32 image, got \(16, 16\)"):
        part[i]
    (folder / "metadata" / "0.npy").write_text("imgs/0 sample_0.png 0\n")
    with pytest.raises(ValueError, match=r"0.npy: row 0 is not \[imgs/<batch>, sample_<i>.png, i, label"):
        pathfinder_task(tmp_path, difficulty="easy")


def test_bad_npz_is_a_clear_error(tmp_path):
    (tmp_path / "pathfinder32").mkdir()
    np.savez(tmp_path / "pathfinder32" / "pathfinder32_cl14.npz", x=np.zeros((4, 16, 16), np.uint8), y=np.zeros(4))
    with pytest.raises(ValueError, match=r"pathfinder32_cl14.npz: expected x \(N, 32, 32\) uint8"):
        pathfinder_task(tmp_path)
    with pytest.raises(DataMissingError, match="curv_contour_length_14/metadata"):
        pathfinder_task(tmp_path, source="images")


# ------------------------------------------------------------------------------------------ generator
def connected_by_flood_fill(image: np.ndarray, a, b, reach: int) -> bool:
    """Is b reachable from a through lit pixels, stepping at most `reach` pixels (Chebyshev) at a time?"""
    lit = image > 0
    R = image.shape[0]
    seen = np.zeros_like(lit)
    queue = deque([tuple(a)])
    seen[tuple(a)] = True
    while queue:
        r, c = queue.popleft()
        if (r, c) == tuple(b):
            return True
        for dr in range(-reach, reach + 1):
            for dc in range(-reach, reach + 1):
                rr, cc = r + dr, c + dc
                if 0 <= rr < R and 0 <= cc < R and lit[rr, cc] and not seen[rr, cc]:
                    seen[rr, cc] = True
                    queue.append((rr, cc))
    return False


@pytest.fixture(scope="module")
def generated():
    return generate_pathfinder(150, resolution=32, seed=7)


def test_generator_labels_are_connectivity(generated):
    images, labels, dots = generated
    assert 0.35 < labels.mean() < 0.65
    for img, y, (a, b) in zip(images, labels, dots, strict=True):
        assert img[tuple(a)] == 255 and img[tuple(b)] == 255 and img[a[0] - 1 : a[0] + 2, a[1] - 1 : a[1] + 2].all()
        # dashes are (2 on, 1 off): a path's lit pixels are at most 2 apart; other paths are farther
        assert connected_by_flood_fill(img, a, b, reach=2) == bool(y)
        assert not connected_by_flood_fill(img, a, b, reach=1) or y  # 8-connectivity alone never joins two paths


def test_generator_draws_dashed_paths_and_distractors(generated):
    images, _, _ = generated
    lit = (images > 0).reshape(len(images), -1).sum(1)
    # two paths of 19 pixels with 13 lit (2 on, 1 off), two 3 x 3 dots, up to 4 distractors of 9 pixels
    assert lit.min() >= 2 * 13 + 6 and lit.max() <= 2 * 19 + 2 * 9 + 4 * 9
    assert np.median(lit) > 2 * 13 + 2 * 5 + 2 * 6  # distractors are usually placed
    assert set(np.unique(images).tolist()) == {0, 255}


def test_generator_is_deterministic_per_image(generated):
    images, labels, dots = generated
    again = generate_pathfinder(5, resolution=32, seed=7)
    assert np.array_equal(again[0], images[:5]) and np.array_equal(again[1], labels[:5])
    assert np.array_equal(again[2], dots[:5])
    assert not np.array_equal(generate_pathfinder(5, resolution=32, seed=8)[0], images[:5])


def test_generator_at_other_resolutions_and_bad_options():
    for R in (16, 64):
        images, labels, dots = generate_pathfinder(6, resolution=R, seed=0)
        assert images.shape == (6, R, R)
        for img, y, (a, b) in zip(images, labels, dots, strict=True):
            assert connected_by_flood_fill(img, a, b, reach=2) == bool(y)
    with pytest.raises(ValueError, match="resolution must be >= 16"):
        generate_pathfinder(1, resolution=8)
    with pytest.raises(ValueError, match="dash"):
        generate_pathfinder(1, dash=(0, 1))
    with pytest.raises(ValueError, match="cannot fit two paths"):
        generate_pathfinder(1, resolution=16, contour_length=200)


def test_synthetic_task():
    task = pathfinder_synthetic_task(n_train=12, n_val=4, n_test=4, resolution=32, seed=2)
    assert (len(task.train), len(task.val), len(task.test)) == (12, 4, 4) and task.l_max == 1024
    images, labels, _ = generate_pathfinder(20, resolution=32, seed=2)
    x, y = task.test[3]
    assert torch.equal(x[:, 0], torch.from_numpy(images[19].reshape(-1)).float() / 255) and int(y) == labels[19]
    assert pathfinder_synthetic_task(n_train=2, n_val=0, n_test=1, resolution=16).val is None
    with pytest.raises(ValueError, match=r"n_train and n_test must be ints >= 1.*'n_test': 0"):
        pathfinder_synthetic_task(n_train=2, n_test=0, resolution=16)


def test_lra_tasks_by_name(tmp_path):
    from ssmkit.data.registry import get_task

    task = get_task("pathfinder_synthetic", n_train=2, n_val=1, n_test=1, resolution=16)
    assert task.name == "pathfinder_synthetic" and task.l_max == 256
    for name, file in [
        ("lra_retrieval", "new_aan_pairs.train.tsv"),
        ("lra_text", "aclImdb.tar.gz"),
        ("listops", "basic_train.tsv"),
        ("pathx", "pathfinder128"),
        ("pathfinder", "pathfinder32"),
    ]:
        with pytest.raises(DataMissingError, match=file):
            get_task(name, tmp_path)


def test_truncated_empty_or_too_small_npz_is_a_clear_error(tmp_path):
    folder = tmp_path / "pathfinder32"
    folder.mkdir()
    npz = folder / "pathfinder32_cl14.npz"
    np.savez(npz, x=np.zeros((20, 32, 32), np.uint8), y=np.zeros(20, np.int64))
    npz.write_bytes(npz.read_bytes()[:200])  # truncated: zipfile's BadZipFile must not escape unnamed
    with pytest.raises(ValueError, match=r"pathfinder32_cl14.npz: expected an .npz with x \(N, 32, 32\)"):
        pathfinder_task(tmp_path)
    np.savez(npz, x=np.zeros((0, 32, 32), np.uint8), y=np.zeros(0, np.int64))  # no images: never an empty task
    with pytest.raises(ValueError, match=r"pathfinder32_cl14.npz: 0 images leave the train, val, test split"):
        pathfinder_task(tmp_path)
    np.savez(npz, x=np.zeros((4, 32, 32), np.uint8), y=np.array([0, 1, 0, 1]))  # 80 / 10 / 10 % of 4: empty val
    with pytest.raises(ValueError, match=r"4 images leave the val split\(s\) empty"):
        pathfinder_task(tmp_path)
    (folder / "curv_contour_length_14" / "metadata").mkdir(parents=True)
    (folder / "curv_contour_length_14" / "metadata" / "0.npy").write_text("")
    with pytest.raises(ValueError, match=r"metadata/0.npy: no rows"):
        pathfinder_task(tmp_path, source="images")

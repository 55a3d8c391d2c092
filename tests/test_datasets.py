"""Image dataset loading: layout, reported problems, clear errors, the feature cache."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artpulse_contract.constants import LABELS, FeatureMode
from artpulse_contract.features import extract_features
from artpulse_jobs.data.datasets import DatasetError, load_image_dataset
from artpulse_jobs.data.feature_cache import CACHE_VERSION, PARALLEL_THRESHOLD
from artpulse_jobs.data.generate import generate_image, generate_images
from artpulse_jobs.data.photos import photo_jpeg


@pytest.fixture
def images(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    generate_images(root, per_label=4, size=48, seed=0)
    return root


def test_loads_features_labels_and_counts(images: Path) -> None:
    dataset = load_image_dataset(images, min_per_label=4)
    assert dataset.features.shape == (20, 5)
    assert dataset.features.dtype == np.float32
    assert dataset.labels.dtype == np.int64
    assert dataset.counts == {label: 4 for label in LABELS}
    for path, label, row in zip(dataset.paths, dataset.labels, dataset.features, strict=True):
        assert path.parent.name == LABELS[label]
        np.testing.assert_array_equal(row, extract_features(path.read_bytes()))
    assert dataset.skipped == [] and dataset.unknown_entries == []
    assert len(dataset.content_hash) == 64


def test_other_formats_and_nested_folders_are_read(images: Path) -> None:
    nested = images / "minimal" / "2024" / "spring"
    nested.mkdir(parents=True)
    source = Image.open(images / "minimal" / "minimal_0000.png")
    source.save(nested / "a.JPG", format="JPEG")
    source.save(nested / "b.webp", format="WEBP")
    source.save(nested / "c.bmp", format="BMP")
    (nested / "notes.txt").write_text("not an image suffix: ignored")
    dataset = load_image_dataset(images, min_per_label=4)
    assert dataset.counts["minimal"] == 7
    assert {p.name for p in dataset.paths} >= {"a.JPG", "b.webp", "c.bmp"}


def test_unknown_folders_and_loose_files_are_reported(images: Path) -> None:
    (images / "cubist").mkdir()
    (images / "cubist" / "x.png").write_bytes(generate_image("minimal", 0, size=32))
    (images / "README.txt").write_text("hello")
    dataset = load_image_dataset(images, min_per_label=4)
    assert dataset.unknown_entries == ["README.txt", "cubist/"]
    assert dataset.features.shape[0] == 20
    assert dataset.describe()["unknown_entries"] == ["README.txt", "cubist/"]


def test_unreadable_files_are_skipped_and_named(images: Path) -> None:
    (images / "surreal" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    (images / "vibrant" / "text.jpg").write_bytes(b"definitely not a jpeg")
    dataset = load_image_dataset(images, min_per_label=4)
    skipped = {s.path: s.reason for s in dataset.skipped}
    assert set(skipped) == {"surreal/broken.png", "vibrant/text.jpg"}
    assert "not an image" in skipped["vibrant/text.jpg"]
    assert dataset.counts["surreal"] == 4
    description = dataset.describe()
    assert [s["path"] for s in description["skipped"]] == ["surreal/broken.png", "vibrant/text.jpg"]


def test_a_label_below_the_minimum_is_an_error_naming_it(images: Path) -> None:
    for path in sorted((images / "neo-pop").iterdir())[1:]:
        path.unlink()
    with pytest.raises(DatasetError, match=r"'neo-pop' has 1 readable image.*at least 3"):
        load_image_dataset(images, min_per_label=3)


def test_corrupt_files_do_not_count_towards_the_minimum(images: Path) -> None:
    for index in range(2):
        (images / "monochrome" / f"monochrome_000{index}.png").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="'monochrome' has 2 readable"):
        load_image_dataset(images, min_per_label=3)


def test_fewer_than_two_labels_is_an_error(images: Path) -> None:
    for label in LABELS[1:]:
        shutil.rmtree(images / label)
    with pytest.raises(DatasetError, match=r"images for \['minimal'\].*at least 2 labels"):
        load_image_dataset(images, min_per_label=2)


def test_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        load_image_dataset(tmp_path / "nope")


def test_content_hash_follows_content_not_names(images: Path, tmp_path: Path) -> None:
    before = load_image_dataset(images, min_per_label=4).content_hash
    (images / "minimal" / "minimal_0000.png").rename(images / "minimal" / "renamed.png")
    assert load_image_dataset(images, min_per_label=4).content_hash == before
    (images / "minimal" / "renamed.png").write_bytes(generate_image("minimal", 99, size=48))
    assert load_image_dataset(images, min_per_label=4).content_hash != before


def test_second_load_comes_from_the_cache(images: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = load_image_dataset(images, min_per_label=4, cache_dir=cache)
    assert first.decoded == 20
    shards = list((cache / CACHE_VERSION / FeatureMode.EXACT).glob("*.npz"))
    assert [s.stem for s in shards] == [first.content_hash]
    second = load_image_dataset(images, min_per_label=4, cache_dir=cache)
    assert second.decoded == 0
    np.testing.assert_array_equal(second.features, first.features)
    np.testing.assert_array_equal(second.labels, first.labels)


def test_the_cache_keeps_each_feature_mode_apart(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    for index, label in enumerate(LABELS):
        (root / label).mkdir(parents=True)
        for copy in range(2):
            data = photo_jpeg(520 + 40 * index, 400, seed=copy, subsampling="4:2:0")
            (root / label / f"{copy}.jpg").write_bytes(data)
    cache = tmp_path / "cache"
    exact = load_image_dataset(root, min_per_label=2, cache_dir=cache)
    draft = load_image_dataset(
        root, min_per_label=2, cache_dir=cache, feature_mode=FeatureMode.DRAFT
    )
    assert draft.decoded == 10  # the exact rows cached for the same files are not reused
    assert not np.array_equal(draft.features, exact.features)
    for path, row in zip(draft.paths, draft.features, strict=True):
        np.testing.assert_array_equal(
            row, extract_features(path.read_bytes(), mode=FeatureMode.DRAFT)
        )
    again = load_image_dataset(
        root, min_per_label=2, cache_dir=cache, feature_mode=FeatureMode.DRAFT
    )
    assert again.decoded == 0
    np.testing.assert_array_equal(again.features, draft.features)


def test_cache_remembers_unreadable_files(images: Path, tmp_path: Path) -> None:
    (images / "surreal" / "broken.png").write_bytes(b"not a png")
    cache = tmp_path / "cache"
    first = load_image_dataset(images, min_per_label=4, cache_dir=cache)
    second = load_image_dataset(images, min_per_label=4, cache_dir=cache)
    assert second.decoded == 0
    assert second.skipped == first.skipped != []


def test_a_grown_dataset_decodes_only_the_new_files(images: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    load_image_dataset(images, min_per_label=4, cache_dir=cache)
    for index in range(4, 7):
        path = images / "vibrant" / f"vibrant_{index:04d}.png"
        path.write_bytes(generate_image("vibrant", index, size=48))
    grown = load_image_dataset(images, min_per_label=4, cache_dir=cache)
    assert grown.decoded == 3
    assert grown.counts["vibrant"] == 7


def test_worker_processes_give_the_same_features(tmp_path: Path) -> None:
    root = tmp_path / "many"
    generate_images(root, per_label=PARALLEL_THRESHOLD // len(LABELS) + 1, size=24, seed=4)
    (root / "neo-pop" / "broken.png").write_bytes(b"broken")
    pooled = load_image_dataset(root, workers=2)
    inline = load_image_dataset(root, workers=1)
    assert pooled.decoded == inline.decoded > PARALLEL_THRESHOLD
    np.testing.assert_array_equal(pooled.features, inline.features)
    assert pooled.skipped == inline.skipped and len(pooled.skipped) == 1

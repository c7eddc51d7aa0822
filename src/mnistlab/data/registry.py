"""The named datasets: what each one is, where its files come from, and how to check them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FileSpec:
    """One file of a named dataset.

    sha256: of the *decompressed* content. Debian re-compressed Fashion-MNIST, so the .gz bytes
        differ between mirrors while the content is identical; this is the hash that always holds.
    gz_sha256: of the .gz file as the upstream mirrors publish it; used where the decompressed
        hash is not recorded (a found file that is stored uncompressed can then be checked only
        for its shape).
    """

    filename: str
    sha256: str | None = None
    gz_sha256: str | None = None
    #: the most bytes a download of this file may bring: a server that sends more (an endless
    #: body) is cut off there (the largest file of the named datasets is 18 MB)
    max_bytes: int = 64 << 20


@dataclass(frozen=True)
class DatasetSpec:
    """A named dataset: classes, image shape, split sizes, files, mirrors and checksums."""

    name: str
    title: str
    class_names: tuple[str, ...]
    image_shape: tuple[int, int]
    n_train: int
    n_test: int
    files: dict[str, FileSpec] = field(default_factory=dict)
    mirrors: tuple[str, ...] = ()
    kind: str = "idx"
    pixel_max: int = 255

    @property
    def n_classes(self) -> int:
        """Number of classes (of class names)."""
        return len(self.class_names)


IDX_ROLES = ("train_images", "train_labels", "test_images", "test_labels")
_IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}


def _files(**hashes: tuple[str | None, str | None]) -> dict[str, FileSpec]:
    return {role: FileSpec(_IDX_NAMES[role], *hashes[role]) for role in IDX_ROLES}


MNIST = DatasetSpec(
    name="mnist",
    title="MNIST handwritten digits",
    class_names=tuple(str(d) for d in range(10)),
    image_shape=(28, 28),
    n_train=60_000,
    n_test=10_000,
    files=_files(
        train_images=(None, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
        train_labels=(None, "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
        test_images=(None, "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
        test_labels=(None, "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    ),
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
)

FASHION_MNIST = DatasetSpec(
    name="fashion-mnist",
    title="Fashion-MNIST (Zalando article images)",
    class_names=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    image_shape=(28, 28),
    n_train=60_000,
    n_test=10_000,
    files=_files(
        train_images=(
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        ),
        train_labels=(
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        ),
        test_images=(
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        ),
        test_labels=(
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        ),
    ),
    mirrors=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
    ),
)

KMNIST = DatasetSpec(
    name="kmnist",
    title="Kuzushiji-MNIST (cursive Japanese hiragana)",
    class_names=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
    image_shape=(28, 28),
    n_train=60_000,
    n_test=10_000,
    files=_files(
        train_images=(None, "51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4"),
        train_labels=(None, "e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17"),
        test_images=(None, "edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5"),
        test_labels=(None, "20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c"),
    ),
    mirrors=(
        "https://codh.rois.ac.jp/kmnist/dataset/kmnist/",
        "http://codh.rois.ac.jp/kmnist/dataset/kmnist/",
    ),
)

DIGITS = DatasetSpec(
    name="digits",
    title="scikit-learn's bundled 8x8 digits (UCI optical recognition), 80/20 stratified split",
    class_names=tuple(str(d) for d in range(10)),
    image_shape=(8, 8),
    n_train=1_438,
    n_test=359,
    kind="digits",
    pixel_max=16,
)

REGISTRY: dict[str, DatasetSpec] = {
    spec.name: spec for spec in (MNIST, FASHION_MNIST, KMNIST, DIGITS)
}


def get_spec(name: str) -> DatasetSpec:
    """The named dataset's description; KeyError if unknown."""
    return REGISTRY[name]

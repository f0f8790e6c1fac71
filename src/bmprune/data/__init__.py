"""Data: the paper's MNIST and CIFAR-10 preparations, embedded sets, a researcher's own data.

Every loader returns a validated :class:`Dataset` (``x`` (N, n_visible) uint8 in {0,1}).

=============================  =================================================================
:func:`load_mnist`             MNIST, central 20×20 crop, binarised against the split's mean (SPEC §3)
:func:`load_cifar_patches`     CIFAR-10 circular patches, global-median binarisation (SPEC §3)
:func:`load_digits`            scikit-learn 8×8 digits, binarised (embedded, no download)
:func:`load_photo_patches`     patches from scikit-learn's sample photographs (embedded)
:func:`load_binary`            a researcher's own .npy / .npz / .csv 0/1 data
:func:`circular_mask`          the patch shape (bool (k, k)), for drawing and for the pipeline
:func:`data_dir`               where the real files live (``$BMPRUNE_DATA_DIR`` or the user cache)
:func:`fetch`, :func:`info`    download with pinned checksums; inventory with verification
:func:`verify_file`            check a file against its pinned checksum, with a record (issue 13)
=============================  =================================================================
"""

from .builtin import load_digits, load_photo_patches
from .cifar import TRAIN_BATCHES, load_cifar_grey, load_cifar_patches
from .dataset import Dataset, check_binary
from .integrity import verify_file
from .mnist import load_mnist
from .patches import CIFAR_CENTERS, circular_mask, mask_offsets
from .store import ENV_VAR, FileStatus, data_dir, fetch, info
from .user import load_binary

__all__ = [
    "Dataset", "check_binary", "load_mnist", "load_cifar_patches", "load_cifar_grey", "load_digits",
    "load_photo_patches", "load_binary", "circular_mask", "mask_offsets", "CIFAR_CENTERS",
    "TRAIN_BATCHES", "data_dir", "fetch", "info", "FileStatus", "ENV_VAR", "verify_file",
]

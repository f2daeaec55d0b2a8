"""Input contracts, readers and validation (file, row, column, why)."""

from hiddenpop.data.ard import ARD, read_ard, read_known_sizes
from hiddenpop.data.io import file_sha256, read_table
from hiddenpop.errors import DataError, ModelError

__all__ = ["ARD", "DataError", "ModelError", "file_sha256", "read_ard", "read_known_sizes", "read_table"]

"""The Python side of the GPU backends that runs anywhere: which dtypes reach the CUDA kernels
(float32 and float64 as they are, float16 and bfloat16 promoted, everything else refused instead of
being read as float64), bfloat16 input through the public API, and the inf-FS cache release."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import planted, rel_err
from swnas.errors import InputError
from swnas.scoring import score
from swnas.scoring._arrays import array_info, as_float_matrix
from swnas.scoring._pls_cuda import cuda_matrix
from swnas.scoring._torch_cuda import as_cuda_tensor, dtype_code, kernel_dtype


def test_dtype_code_refuses_what_has_no_kernel():
    assert dtype_code(torch.zeros(2, dtype=torch.float32)) == 0
    assert dtype_code(torch.zeros(2, dtype=torch.float64)) == 1
    for dt in (torch.float16, torch.bfloat16, torch.int64, torch.int32, torch.bool):
        with pytest.raises(InputError, match="dtype"):
            dtype_code(torch.zeros(2, dtype=dt))


def test_kernel_dtype_promotes_half_types_and_refuses_the_rest():
    for dt in (torch.float32, torch.float64):
        t = torch.ones(3, 2, dtype=dt)
        assert kernel_dtype(t) is t  # never copied
    for dt in (torch.float16, torch.bfloat16):
        out = kernel_dtype(torch.full((3, 2), 1.5, dtype=dt))
        assert out.dtype == torch.float32 and bool((out == 1.5).all())
    for dt in (torch.int32, torch.uint8, torch.bool, torch.complex64):
        with pytest.raises(InputError, match="not a floating-point type"):
            kernel_dtype(torch.zeros(3, 2, dtype=dt))


def test_as_cuda_tensor_refuses_integers_before_touching_the_gpu():
    with pytest.raises(InputError, match="int32"):
        as_cuda_tensor(torch.zeros(4, 3, dtype=torch.int32))
    with pytest.raises(InputError, match="int64"):
        as_cuda_tensor(np.zeros((4, 3), dtype=np.int64))


def test_pls_cuda_matrix_refuses_half_precision_instead_of_reading_it_as_float32():
    with pytest.raises(InputError, match="float16"):
        cuda_matrix(None, torch.zeros((4, 8), dtype=torch.float16))


def test_bfloat16_features_are_accepted_and_promoted():
    X, y = planted(300, 12, 3, seed=3, dtype=np.float32)
    Xb = torch.from_numpy(X).to(torch.bfloat16)
    assert array_info(Xb).dtype.itemsize == 2
    Xp, info = as_float_matrix(Xb)
    assert Xp.dtype == torch.float32 and info.dtype == np.float32
    want = score(Xb.float().numpy(), y, "pls", backend="numpy").features
    for backend in ("numpy", "cpp"):
        got = score(Xb, y, "pls", backend=backend).features
        assert rel_err(got, want) < 1e-7

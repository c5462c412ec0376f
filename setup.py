"""Maps the repository's top-level folders into the one ``copytrader`` package.

setup.cfg holds the metadata; only the package list is computed here, because setup.cfg
cannot express "every subpackage of these folders, prefixed with copytrader.". The build also
makes sure the dashboard's two browser libraries are in the wheel (see :class:`BuildPy`).
"""

import subprocess
import sys
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
VENDOR = ROOT / "web" / "static" / "vendor"
VENDORED = ("lightweight-charts.standalone.production.js", "socket.io.min.js")


class BuildPy(build_py):
    """Vendor the browser libraries before packaging when a checkout lacks them.

    The Docker image brings them from its Node stage; a plain ``pip install .`` from a git
    checkout runs ``scripts/vendor-web.sh`` (npm). Without npm the build goes on and says so
    loudly: the dashboard then shows a banner instead of silently losing its live push.
    """

    def run(self) -> None:
        script = ROOT / "scripts" / "vendor-web.sh"
        if not all((VENDOR / name).exists() for name in VENDORED) and script.exists():
            done = subprocess.run(["bash", str(script)], check=False)
            if done.returncode != 0:
                print(
                    "copytrader: WARNING: browser libraries not vendored (npm missing?); "
                    "the dashboard will have no live push and no chart",
                    file=sys.stderr,
                )
        super().run()


# Every layer of the layout (docs/architecture.md, "Folders"); tests/ stays out of the wheel.
FOLDERS = ("common", "brokers", "core", "storage", "tables", "agents", "web", "app", "demo")
subpackages = find_packages(include=[f"{name}*" for name in FOLDERS] + [name for name in FOLDERS])
setup(
    # kafka/ holds data only (the broker's pom.xml and log4j settings), listed so it ships.
    packages=["copytrader", "copytrader.kafka"] + [f"copytrader.{name}" for name in subpackages],
    package_dir={"copytrader": "."},
    cmdclass={"build_py": BuildPy},
)

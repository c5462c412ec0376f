"""Maps the repository's top-level folders into the one ``copytrader`` package.

setup.cfg holds the metadata; only the package list is computed here, because setup.cfg
cannot express "every subpackage of these folders, prefixed with copytrader.".
"""

from setuptools import find_packages, setup

FOLDERS = ("app", "agents", "tables", "brokers", "web", "storage")
subpackages = find_packages(include=[f"{name}*" for name in FOLDERS] + [name for name in FOLDERS])
setup(
    # kafka/ holds data only (the broker's pom.xml and log4j settings), listed so it ships.
    packages=["copytrader", "copytrader.kafka"] + [f"copytrader.{name}" for name in subpackages],
    package_dir={"copytrader": "."},
)

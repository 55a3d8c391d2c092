"""Where versions registered before the contract split find their model class.

A logged pyfunc is pickled by reference to its class's module, and versions registered
before ``ArtPulseClassifier`` moved to ``artpulse_contract.classifier`` name this module:
this name keeps them loadable. New versions name the contract's module.
"""

from artpulse_contract.classifier import ArtPulseClassifier as ArtPulseClassifier

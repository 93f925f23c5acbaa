"""Attribution helpers for one-hot biological sequences."""

from saliencelab.genomics.deepshap import deepshap, hypothetical_contributions, shuffled_references
from saliencelab.genomics.shuffle import dinucleotide_shuffle

__all__ = ["deepshap", "dinucleotide_shuffle", "hypothetical_contributions", "shuffled_references"]

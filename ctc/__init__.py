"""ctc: the common-test-conditions harness (docs/ctc.md).

condition (YAML conditions), datasets/fetch/images (originals and their checksums), registry
(codecs from the `ctc.codecs` entry points), ratecontrol, metrics, job/runner/store (running
and resuming batches), results and cli (`ctc`); bdrate for BD-rate.
"""

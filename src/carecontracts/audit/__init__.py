"""Plausibility audits: can reported waiting times and target performance be believed?

Threshold bunching (polynomial counterfactual with a bootstrap interval), a density
discontinuity test at the threshold, statistical process control (p- and Laney p′-charts
where the counts behind a share are known, XmR otherwise, with the Making
Data Count rules), logical checks kept as a manifest with severities, and reported
figures compared with the same measure recomputed from patient-level records. The
library returns findings; the command line and the report present them.
"""

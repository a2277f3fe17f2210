"""Offline data: data-only wheels (``offline``), real anatomy (``anatomy``), phantoms built on it
(``phantoms``), the IU X-ray reports (``reports``) and loaders for real data sets (``loaders``)."""

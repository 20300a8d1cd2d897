"""The schedulers shipped with xnf, one module each, registered in ``xnf.schedulers``."""

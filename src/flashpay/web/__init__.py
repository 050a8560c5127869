"""``flashpay.web``: the app as web pages — the wallet, the merchant POS and the operator console.

Pages are rendered on the server (Jinja2) and made live by a little of our own JavaScript that
calls the same ``/v1`` API as any client (decision 0023). Every asset is served by flashpay from
this package's ``static`` folder: no CDN, no build step. A browser authenticates with the
``fp_session`` cookie (``flashpay.api.security``: HttpOnly, SameSite=Strict, a double-submit
CSRF token); this package only opens and closes those sessions (``session``), serves the pages
(``router``) and the few reads the pages need that the API has no route for (``views``).
"""

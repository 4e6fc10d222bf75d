"""The app tests/app/test_downloads.py serves through app.security.protected_app: the real login and "Log out"
(app/auth.py), then one download built on click by app.security.download_button, as the pages draw theirs."""
from app import auth, security

security.DOWNLOAD_SECONDS = 3.0          # test_downloads.TTL: a link dies after 3 s here (120 s in the app)
auth.require_login()
auth.sidebar()
security.download_button("Predictions (CSV)", lambda: "patient_id,risk\nq001,0.91\n", "predictions.csv",
                         mime="text/csv", key="test.download")

"""`wtflow ui`: a read-only web app over the record (Starlette; `pip install 'wtflow[ui]'`)."""

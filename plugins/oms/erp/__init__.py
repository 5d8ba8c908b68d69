"""The ERP side: store-wise stock pulled from Business Central / NAV / Oracle."""

"""After the sale: returns in store and from home, exchanges, RTO restocks, and the
Magento documents they cause. Notifications are in oms.notifications. docs/returns.md."""

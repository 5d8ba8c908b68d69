"""The Magento side: orders pulled from each country's web store by their updated_at."""

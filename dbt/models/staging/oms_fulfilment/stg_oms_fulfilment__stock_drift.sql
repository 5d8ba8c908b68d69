-- Reconciliation findings: Magento's salable quantity against what the platform expected it to
-- be. Positive drift = Magento promises more than there is (oversell risk); negative = stock
-- withheld from sale (undersell).
with

source as (

    select * from {{ source('oms_fulfilment', 'stock_drift') }}

),

renamed as (

    select
        ----------  ids
        drift_id,
        channel_code,
        sku,
        stock_id,

        ---------- quantities
        expected_salable,
        magento_salable,
        drift,

        ---------- booleans
        repaired as is_repaired,

        ---------- timestamps
        checked_at

    from source

)

select * from renamed

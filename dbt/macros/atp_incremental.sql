{#-
    The incremental ATP marts (docs/adr/0012-incremental-marts.md). fct_atp_store and
    fct_atp_country work out, in a pre-hook, the keys whose rows can have changed since their last
    build (a temporary table, dropped at commit), delete those keys' rows, and append what the
    model computes for them; the post-hook records the model's state. Everything runs in the
    model's own transaction, so the state (oms.dbt_incremental_state, oms.atp_country_pending;
    sql/016) advances exactly when the rows do.
-#}

{% macro incremental_lookback() -%}
    interval '{{ env_var("OMS_DBT_LOOKBACK_MINUTES", var("incremental_lookback_minutes")) | int }} minutes'
{%- endmacro %}

{% macro incremental_state_relation() -%}
    {{ return(api.Relation.create(database=target.database, schema='oms', identifier='dbt_incremental_state')) }}
{%- endmacro %}

{% macro atp_store_pending_relation() -%}
    {{ return(api.Relation.create(database=target.database, schema='oms', identifier='atp_store_pending')) }}
{%- endmacro %}

{% macro atp_store_written_relation() -%}
    {{ return(api.Relation.create(database=target.database, schema='oms', identifier='atp_store_written')) }}
{%- endmacro %}

{% macro atp_country_pending_relation() -%}
    {{ return(api.Relation.create(database=target.database, schema='oms', identifier='atp_country_pending')) }}
{%- endmacro %}

{#- Upsert of a model's state: the newest input timestamp its rows reflect and its reference digest. -#}
{% macro record_incremental_state(model_name, watermark_sql, digest_sql) -%}
    insert into {{ incremental_state_relation() }} as state (model, watermark, reference_digest, built_at)
    values ('{{ model_name }}', ({{ watermark_sql }}), ({{ digest_sql }}), now())
    on conflict (model) do update
        set watermark = excluded.watermark, reference_digest = excluded.reference_digest, built_at = excluded.built_at
{%- endmacro %}

{#- What int_safety_stock__resolved is built from: the rules and the (location, SKU) grid with the
    SKUs' categories. Read in its pre-hook, before the model reads the same views: a change in
    between makes the next build see a difference (a superset recomputed), never the reverse. -#}
{% macro safety_stock_reference_digest() -%}
    select md5(
        coalesce((select string_agg(r::text, ',' order by r.safety_stock_rule_id)
                  from (select safety_stock_rule_id, store_id, sku, category, safety_stock_qty
                        from {{ ref('stg_ref__safety_stock_rules') }}) as r), '')
        || '#' || coalesce((select string_agg(l::text, ',' order by l.store_id)
                            from (select store_id, is_active from {{ ref('stg_ref__locations') }}) as l), '')
        || '#' || coalesce((select string_agg(s::text, ',' order by s.sku)
                            from (select sku, category, is_active, is_stock_managed from {{ ref('stg_ref__skus') }}) as s), '')
    )
{%- endmacro %}

{#- int_safety_stock__resolved's first pre-hook on an incremental build: the digest now and whether
    it differs from the one recorded at its last build (safety_stock_changed, dropped at commit);
    if so the grid is emptied here and the model writes it whole. The second pre-hook records this
    same digest (read once: a change committed after it makes the next build differ, never the
    reverse). TRUNCATE, not DELETE: the whole grid goes (5M rows at M); it is transactional in
    Postgres. -#}
{% macro safety_stock_changed() -%}
    create temporary table safety_stock_changed on commit drop as
    select now_digest.digest,
           (select reference_digest from {{ incremental_state_relation() }}
            where model = 'int_safety_stock__resolved') is distinct from now_digest.digest as changed
    from ({{ safety_stock_reference_digest() }}) as now_digest (digest);

    do $$
    begin
        if (select safety_stock_changed.changed from safety_stock_changed) then
            truncate {{ this }};
        end if;
    end
    $$
{%- endmacro %}

{#- The reference data fct_atp_store's rows depend on beyond a store's own attributes: the safety
    stock rules and grid int_safety_stock__resolved was built from (its recorded digest), and
    which locations and SKUs are active and stock-managed (dim_locations, dim_skus: tables, the
    same for the whole build). A different digest recomputes every row. -#}
{% macro atp_store_reference_digest() -%}
    select md5(
        coalesce((select reference_digest from {{ incremental_state_relation() }}
                  where model = 'int_safety_stock__resolved'), '')
        || '#' || coalesce((select string_agg(l::text, ',' order by l.store_id)
                            from (select store_id, is_active from {{ ref('dim_locations') }}) as l), '')
        || '#' || coalesce((select string_agg(s::text, ',' order by s.sku)
                            from (select sku, is_active, is_stock_managed from {{ ref('dim_skus') }}) as s), '')
    )
{%- endmacro %}

{#- int_stock__on_hand's pre-hook: the (store, SKU) pairs to recompute, into on_hand_slice: pairs
    whose snapshot row landed after the newest snapshot_loaded_at held, pairs with a movement
    received after the newest movements_received_at held (both less the look-back; movements are
    only inserted), and the pairs of erp_stock quarantine entries open now or resolved since (the
    pair's snapshot row may have gone back to an older row, or gone). -#}
{% macro on_hand_slice() -%}
    create temporary table on_hand_slice on commit drop as
    with

    since as (
        select
            coalesce(max(held.snapshot_loaded_at), '-infinity'::timestamptz) - {{ incremental_lookback() }} as loaded_at,
            coalesce(max(held.movements_received_at), '-infinity'::timestamptz) - {{ incremental_lookback() }} as received_at
        from {{ this }} as held
    )

    select latest.store_id, latest.sku
    from {{ ref('int_stock__latest_snapshot') }} as latest
    where latest.loaded_at > (select since.loaded_at from since)
    union
    select recorded.store_id, recorded.sku
    from {{ ref('stg_oms_inventory__erp_movements') }} as recorded
    where recorded.received_at > (select since.received_at from since)
    union
    select landed.store_id, landed.sku
    from {{ ref('base_quarantine__records') }} as entries
    inner join {{ ref('base_erp__stock') }} as landed
        on landed.record_key = entries.record_key
    where entries.source_feed = 'erp_stock'
      and (entries.is_open or entries.resolved_at > (select since.loaded_at from since))
      and landed.store_id is not null
      and landed.sku is not null;

    analyze on_hand_slice;

    delete from {{ this }} as held
    using on_hand_slice as slice
    where held.store_id = slice.store_id
      and held.sku = slice.sku
{%- endmacro %}

{#- int_stock__on_hand's post-hook: hand the recomputed pairs to fct_atp_store. -#}
{% macro on_hand_record() -%}
    {% if is_incremental() %}
        insert into {{ atp_store_pending_relation() }} (store_id, sku) select store_id, sku from on_hand_slice;
    {% else %}
        insert into {{ atp_store_pending_relation() }} (store_id, sku) values ('*', '*');
    {% endif %}
    -- sized for the model's data tests, which read these keys on an incremental build
    analyze {{ atp_store_pending_relation() }}
{%- endmacro %}

{#- fct_atp_store's pre-hook: the (store, SKU) keys to recompute, into atp_store_slice. -#}
{% macro atp_store_slice() -%}
    create temporary table atp_store_slice on commit drop as
    with

    state as (
        select reference_digest from {{ incremental_state_relation() }} where model = 'fct_atp_store'
    ),

    pending as (
        select store_id, sku from {{ atp_store_pending_relation() }}
    ),

    -- no state yet, the reference data changed or int_stock__on_hand was rebuilt whole: every key
    every_key as (
        select not exists (
            select 1 from state where state.reference_digest = ({{ atp_store_reference_digest() }})
        ) or exists (select 1 from pending where pending.store_id = '*') as yes
    ),

    -- an active location whose attributes differ from those its held rows carry (all rows of a
    -- store carry the same: a store whose attributes change is recomputed whole)
    changed_stores as (
        select locations.store_id
        from {{ ref('dim_locations') }} as locations
        left join lateral (
            select held.country_code, held.channel_code, held.location_type, held.ship_from_store,
                   held.pickup_enabled, held.is_channel_eligible, held.magento_source_code
            from {{ this }} as held
            where held.store_id = locations.store_id
            limit 1
        ) as probe on true
        where locations.is_active
          and (probe.country_code, probe.channel_code, probe.location_type, probe.ship_from_store,
               probe.pickup_enabled, probe.is_channel_eligible, probe.magento_source_code)
              is distinct from
              (locations.country_code, locations.channel_code, locations.location_type, locations.ship_from_store,
               locations.pickup_enabled, locations.is_channel_eligible, locations.magento_source_code)
    ),

    held_holds as (
        select store_id, sku, reserved_qty, awaiting_erp_qty, restocked_qty
        from {{ this }}
        where reserved_qty <> 0 or awaiting_erp_qty <> 0 or restocked_qty <> 0
    )

    select store_id, sku from {{ this }} where (select yes from every_key)
    union
    select store_id, sku from {{ ref('int_stock__on_hand') }} where (select yes from every_key)
    union
    -- on hand recomputed since (int_stock__on_hand's post-hook)
    select store_id, sku from pending where store_id <> '*'
    union
    -- holds (reservations, postings awaiting the ERP, restocks), by difference with the held rows
    select coalesce(holds.store_id, held_holds.store_id), coalesce(holds.sku, held_holds.sku)
    from {{ ref('int_inventory__store_holds') }} as holds
    full join held_holds
        on held_holds.store_id = holds.store_id
        and held_holds.sku = holds.sku
    where (coalesce(holds.reserved_qty, 0), coalesce(holds.awaiting_erp_qty, 0), coalesce(holds.restocked_qty, 0))
          is distinct from
          (coalesce(held_holds.reserved_qty, 0), coalesce(held_holds.awaiting_erp_qty, 0),
           coalesce(held_holds.restocked_qty, 0))
    union
    select store_id, sku from {{ ref('int_stock__on_hand') }} where store_id in (select store_id from changed_stores)
    union
    select store_id, sku from {{ this }} where store_id in (select store_id from changed_stores);

    analyze atp_store_slice;

    delete from {{ atp_store_pending_relation() }};

    -- the country rows of the keys' old store rows (a store that moved country)
    insert into {{ atp_country_pending_relation() }} (country_code, sku)
    select distinct held.country_code, held.sku
    from {{ this }} as held
    inner join atp_store_slice as slice
        on slice.store_id = held.store_id
        and slice.sku = held.sku;

    delete from {{ this }} as held
    using atp_store_slice as slice
    where held.store_id = slice.store_id
      and held.sku = slice.sku
{%- endmacro %}

{#- fct_atp_store's post-hook: hand the rewritten keys' countries to fct_atp_country, keep the keys
    for the build's data tests, record the state. -#}
{% macro atp_store_record() -%}
    -- the keys this build wrote, for its data tests on an incremental build (macros/test_slice.sql)
    delete from {{ atp_store_written_relation() }};
    {% if is_incremental() %}
        insert into {{ atp_country_pending_relation() }} (country_code, sku)
        select distinct held.country_code, held.sku
        from {{ this }} as held
        inner join atp_store_slice as slice
            on slice.store_id = held.store_id
            and slice.sku = held.sku;
        insert into {{ atp_store_written_relation() }} (store_id, sku) select store_id, sku from atp_store_slice;
    {% else %}
        insert into {{ atp_country_pending_relation() }} (country_code, sku) values ('*', '*');
        delete from {{ atp_store_pending_relation() }};
        insert into {{ atp_store_written_relation() }} (store_id, sku) values ('*', '*');
    {% endif %}
    analyze {{ atp_store_written_relation() }};
    {{ record_incremental_state('fct_atp_store', 'select null::timestamptz', atp_store_reference_digest()) }}
{%- endmacro %}

{#- fct_atp_country's pre-hook: the (country, SKU) keys to recompute, into atp_country_slice. -#}
{% macro atp_country_slice() -%}
    create temporary table atp_country_slice on commit drop as
    with

    pending as (
        select country_code, sku from {{ atp_country_pending_relation() }}
    ),

    every_key as (
        select exists (select 1 from pending where country_code = '*') as yes
    ),

    -- a country whose active channel (its code or buffer) differs from what its held rows carry
    changed_countries as (
        select countries.country_code
        from (
            select country_code from {{ ref('stg_ref__channels') }}
            union
            select distinct country_code from {{ this }}
        ) as countries
        left join {{ ref('stg_ref__channels') }} as channels
            on channels.country_code = countries.country_code
            and channels.is_active
        left join lateral (
            select held.channel_code, held.buffer_qty
            from {{ this }} as held
            where held.country_code = countries.country_code
            limit 1
        ) as probe on true
        where (probe.channel_code, probe.buffer_qty) is distinct from (channels.channel_code, channels.buffer_qty)
    ),

    held_unallocated as (
        select country_code, sku, unallocated_reserved_qty
        from {{ this }}
        where unallocated_reserved_qty <> 0
    )

    select country_code, sku from pending where country_code <> '*'
    union
    select country_code, sku from {{ this }} where (select yes from every_key)
    union
    select country_code, sku from {{ ref('fct_atp_store') }} where (select yes from every_key)
    union
    -- country-level reservations, by difference with the held rows
    select coalesce(unallocated.country_code, held_unallocated.country_code),
           coalesce(unallocated.sku, held_unallocated.sku)
    from {{ ref('int_inventory__unallocated_reservations') }} as unallocated
    full join held_unallocated
        on held_unallocated.country_code = unallocated.country_code
        and held_unallocated.sku = unallocated.sku
    where coalesce(unallocated.unallocated_reserved_qty, 0) <> coalesce(held_unallocated.unallocated_reserved_qty, 0)
    union
    select country_code, sku from {{ this }} where country_code in (select country_code from changed_countries)
    union
    select country_code, sku from {{ ref('fct_atp_store') }}
    where country_code in (select country_code from changed_countries);

    analyze atp_country_slice;

    delete from {{ atp_country_pending_relation() }};

    delete from {{ this }} as held
    using atp_country_slice as slice
    where held.country_code = slice.country_code
      and held.sku = slice.sku
{%- endmacro %}

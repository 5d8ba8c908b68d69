-- One row per routed order: when it was first decided and first allocated, how many decisions
-- it took (re-routes after store rejections), and its latest decision's outcome.
with

decisions as (

    select * from {{ ref('stg_oms_fulfilment__routing_decisions') }}

),

ranked as (

    select
        *,
        row_number() over (partition by order_increment_id order by decision_id desc) as recency

    from decisions

),

per_order as (

    select
        order_increment_id,
        min(decided_at) as first_decided_at,
        min(decided_at) filter (where is_allocating) as first_allocated_at,
        count(*) as decision_count,
        bool_or(is_out_of_stock) as had_out_of_stock

    from decisions
    group by order_increment_id

),

final as (

    select
        per_order.order_increment_id,
        latest.decision_id as latest_decision_id,
        latest.outcome as latest_outcome,
        latest.reason as latest_reason,
        latest.is_allocating as is_allocated,
        latest.profile_version,
        per_order.first_decided_at,
        per_order.first_allocated_at,
        per_order.decision_count,
        per_order.decision_count > 1 as was_rerouted,
        per_order.had_out_of_stock

    from per_order
    inner join ranked as latest
        on latest.order_increment_id = per_order.order_increment_id
        and latest.recency = 1

)

select * from final

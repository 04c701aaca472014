//! Diesel table definitions, matching `migrations/`.

diesel::table! {
    resource_classes (id) {
        id -> Int4,
        name -> Varchar,
        created_at -> Timestamptz,
        updated_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    resource_providers (id) {
        id -> Int4,
        uuid -> Uuid,
        name -> Varchar,
        generation -> Int4,
        root_provider_id -> Int4,
        parent_provider_id -> Nullable<Int4>,
        created_at -> Timestamptz,
        updated_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    inventories (id) {
        id -> Int4,
        resource_provider_id -> Int4,
        resource_class_id -> Int4,
        total -> Int8,
        reserved -> Int8,
        min_unit -> Int8,
        max_unit -> Int8,
        step_size -> Int8,
        allocation_ratio -> Float8,
        created_at -> Timestamptz,
        updated_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    projects (id) {
        id -> Int4,
        external_id -> Varchar,
        created_at -> Timestamptz,
        updated_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    users (id) {
        id -> Int4,
        external_id -> Varchar,
        created_at -> Timestamptz,
        updated_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    consumer_types (id) {
        id -> Int4,
        name -> Varchar,
        created_at -> Timestamptz,
        updated_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    consumers (id) {
        id -> Int4,
        uuid -> Uuid,
        project_id -> Int4,
        user_id -> Int4,
        generation -> Int4,
        consumer_type_id -> Nullable<Int4>,
        created_at -> Timestamptz,
        updated_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    allocations (id) {
        id -> Int8,
        resource_provider_id -> Int4,
        consumer_id -> Uuid,
        resource_class_id -> Int4,
        used -> Int8,
        created_at -> Timestamptz,
        updated_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    placement_aggregates (id) {
        id -> Int4,
        uuid -> Uuid,
        created_at -> Timestamptz,
        updated_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    resource_provider_aggregates (resource_provider_id, aggregate_id) {
        resource_provider_id -> Int4,
        aggregate_id -> Int4,
        created_at -> Timestamptz,
        updated_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    traits (id) {
        id -> Int4,
        name -> Varchar,
        created_at -> Timestamptz,
        updated_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    resource_provider_traits (trait_id, resource_provider_id) {
        trait_id -> Int4,
        resource_provider_id -> Int4,
        created_at -> Timestamptz,
        updated_at -> Nullable<Timestamptz>,
    }
}

diesel::joinable!(inventories -> resource_providers (resource_provider_id));
diesel::joinable!(inventories -> resource_classes (resource_class_id));
diesel::joinable!(allocations -> resource_providers (resource_provider_id));
diesel::joinable!(allocations -> resource_classes (resource_class_id));
diesel::joinable!(consumers -> projects (project_id));
diesel::joinable!(consumers -> users (user_id));
diesel::joinable!(consumers -> consumer_types (consumer_type_id));
diesel::joinable!(resource_provider_aggregates -> resource_providers (resource_provider_id));
diesel::joinable!(resource_provider_aggregates -> placement_aggregates (aggregate_id));
diesel::joinable!(resource_provider_traits -> resource_providers (resource_provider_id));
diesel::joinable!(resource_provider_traits -> traits (trait_id));

diesel::allow_tables_to_appear_in_same_query!(
    resource_classes,
    resource_providers,
    inventories,
    projects,
    users,
    consumer_types,
    consumers,
    allocations,
    placement_aggregates,
    resource_provider_aggregates,
    traits,
    resource_provider_traits,
);

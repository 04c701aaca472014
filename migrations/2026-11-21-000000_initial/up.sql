-- The Placement data model: providers with their inventories, traits and
-- aggregates; consumers with their allocations. Amounts are BIGINT so that
-- sums over many allocations never overflow.

CREATE TABLE resource_classes (
    id INTEGER PRIMARY KEY,
    name VARCHAR(255) NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ
);

-- Standard classes take the ids of their list position; custom ones start here.
CREATE SEQUENCE custom_resource_class_id_seq START 10000;

CREATE TABLE resource_providers (
    id SERIAL PRIMARY KEY,
    uuid UUID NOT NULL UNIQUE,
    name VARCHAR(200) NOT NULL UNIQUE,
    generation INTEGER NOT NULL DEFAULT 0,
    root_provider_id INTEGER NOT NULL REFERENCES resource_providers (id),
    parent_provider_id INTEGER REFERENCES resource_providers (id),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ
);
CREATE INDEX resource_providers_root_provider_id_idx ON resource_providers (root_provider_id);
CREATE INDEX resource_providers_parent_provider_id_idx ON resource_providers (parent_provider_id);

CREATE TABLE inventories (
    id SERIAL PRIMARY KEY,
    resource_provider_id INTEGER NOT NULL REFERENCES resource_providers (id) ON DELETE CASCADE,
    resource_class_id INTEGER NOT NULL REFERENCES resource_classes (id),
    total BIGINT NOT NULL,
    reserved BIGINT NOT NULL,
    min_unit BIGINT NOT NULL,
    max_unit BIGINT NOT NULL,
    step_size BIGINT NOT NULL,
    allocation_ratio DOUBLE PRECISION NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ,
    UNIQUE (resource_provider_id, resource_class_id)
);
CREATE INDEX inventories_resource_class_id_idx ON inventories (resource_class_id);

CREATE TABLE projects (
    id SERIAL PRIMARY KEY,
    external_id VARCHAR(255) NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ
);

CREATE TABLE users (
    id SERIAL PRIMARY KEY,
    external_id VARCHAR(255) NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ
);

CREATE TABLE consumer_types (
    id SERIAL PRIMARY KEY,
    name VARCHAR(255) NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ
);

CREATE TABLE consumers (
    id SERIAL PRIMARY KEY,
    uuid UUID NOT NULL UNIQUE,
    project_id INTEGER NOT NULL REFERENCES projects (id),
    user_id INTEGER NOT NULL REFERENCES users (id),
    generation INTEGER NOT NULL DEFAULT 0,
    consumer_type_id INTEGER REFERENCES consumer_types (id),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ
);
CREATE INDEX consumers_project_id_user_id_idx ON consumers (project_id, user_id);
CREATE INDEX consumers_consumer_type_id_idx ON consumers (consumer_type_id);

CREATE TABLE allocations (
    id BIGSERIAL PRIMARY KEY,
    resource_provider_id INTEGER NOT NULL REFERENCES resource_providers (id),
    consumer_id UUID NOT NULL,
    resource_class_id INTEGER NOT NULL REFERENCES resource_classes (id),
    used BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ
);
CREATE INDEX allocations_resource_provider_class_used_idx ON allocations (resource_provider_id, resource_class_id, used);
CREATE INDEX allocations_resource_class_id_idx ON allocations (resource_class_id);
CREATE INDEX allocations_consumer_id_idx ON allocations (consumer_id);

CREATE TABLE placement_aggregates (
    id SERIAL PRIMARY KEY,
    uuid UUID NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ
);

CREATE TABLE resource_provider_aggregates (
    resource_provider_id INTEGER NOT NULL REFERENCES resource_providers (id) ON DELETE CASCADE,
    aggregate_id INTEGER NOT NULL REFERENCES placement_aggregates (id),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ,
    PRIMARY KEY (resource_provider_id, aggregate_id)
);
CREATE INDEX resource_provider_aggregates_aggregate_id_idx ON resource_provider_aggregates (aggregate_id);

CREATE TABLE traits (
    id SERIAL PRIMARY KEY,
    name VARCHAR(255) NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ
);

CREATE TABLE resource_provider_traits (
    trait_id INTEGER NOT NULL REFERENCES traits (id),
    resource_provider_id INTEGER NOT NULL REFERENCES resource_providers (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ,
    PRIMARY KEY (trait_id, resource_provider_id)
);
CREATE INDEX resource_provider_traits_resource_provider_trait_idx ON resource_provider_traits (resource_provider_id, trait_id);

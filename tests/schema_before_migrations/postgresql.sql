-- The tables `flask init-db` made with create_all() before migrations (commit
-- fe082e5), dumped from a PostgreSQL 15 database it made with
-- pg_dump --schema-only --no-owner --no-privileges. See tests/test_migrations.py.
CREATE TABLE public.order_items (
    id integer NOT NULL,
    order_id integer NOT NULL,
    product_id integer NOT NULL,
    name character varying(100) NOT NULL,
    unit_price_paisa integer NOT NULL,
    quantity integer NOT NULL,
    _sentinel integer
);
CREATE SEQUENCE public.order_items_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE public.order_items_id_seq OWNED BY public.order_items.id;
CREATE TABLE public.orders (
    id integer NOT NULL,
    purchase_order_id character varying(32) NOT NULL,
    status character varying(32) NOT NULL,
    customer_name character varying(100) NOT NULL,
    customer_email character varying(254) NOT NULL,
    customer_phone character varying(10) NOT NULL,
    total_paisa integer NOT NULL,
    created_at timestamp without time zone NOT NULL,
    checkout_token character varying(32),
    pidx character varying(64),
    payment_url character varying(500),
    expires_at character varying(40),
    transaction_id character varying(64),
    failure_reason text
);
CREATE SEQUENCE public.orders_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE public.orders_id_seq OWNED BY public.orders.id;
CREATE TABLE public.payment_events (
    id integer NOT NULL,
    order_id integer NOT NULL,
    created_at timestamp without time zone NOT NULL,
    kind character varying(40) NOT NULL,
    data text NOT NULL
);
CREATE SEQUENCE public.payment_events_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE public.payment_events_id_seq OWNED BY public.payment_events.id;
CREATE TABLE public.product (
    id integer NOT NULL,
    slug character varying(64) NOT NULL,
    name character varying(100) NOT NULL,
    description text NOT NULL,
    price_paisa integer NOT NULL,
    stock integer NOT NULL
);
CREATE SEQUENCE public.product_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE public.product_id_seq OWNED BY public.product.id;
CREATE TABLE public.refunds (
    id integer NOT NULL,
    order_id integer NOT NULL,
    token character varying(64) NOT NULL,
    amount_paisa integer NOT NULL,
    staff_email character varying(254) NOT NULL,
    reason text NOT NULL,
    state character varying(16) NOT NULL,
    khalti_answer text,
    created_at timestamp without time zone NOT NULL
);
CREATE SEQUENCE public.refunds_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE public.refunds_id_seq OWNED BY public.refunds.id;
CREATE TABLE public.staff (
    id integer NOT NULL,
    email character varying(254) NOT NULL,
    password_hash character varying(255) NOT NULL,
    created_at timestamp without time zone NOT NULL
);
CREATE SEQUENCE public.staff_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE public.staff_id_seq OWNED BY public.staff.id;
ALTER TABLE ONLY public.order_items ALTER COLUMN id SET DEFAULT nextval('public.order_items_id_seq'::regclass);
ALTER TABLE ONLY public.orders ALTER COLUMN id SET DEFAULT nextval('public.orders_id_seq'::regclass);
ALTER TABLE ONLY public.payment_events ALTER COLUMN id SET DEFAULT nextval('public.payment_events_id_seq'::regclass);
ALTER TABLE ONLY public.product ALTER COLUMN id SET DEFAULT nextval('public.product_id_seq'::regclass);
ALTER TABLE ONLY public.refunds ALTER COLUMN id SET DEFAULT nextval('public.refunds_id_seq'::regclass);
ALTER TABLE ONLY public.staff ALTER COLUMN id SET DEFAULT nextval('public.staff_id_seq'::regclass);
ALTER TABLE ONLY public.order_items
    ADD CONSTRAINT order_items_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.orders
    ADD CONSTRAINT orders_checkout_token_key UNIQUE (checkout_token);
ALTER TABLE ONLY public.orders
    ADD CONSTRAINT orders_pidx_key UNIQUE (pidx);
ALTER TABLE ONLY public.orders
    ADD CONSTRAINT orders_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.orders
    ADD CONSTRAINT orders_purchase_order_id_key UNIQUE (purchase_order_id);
ALTER TABLE ONLY public.payment_events
    ADD CONSTRAINT payment_events_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.product
    ADD CONSTRAINT product_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.product
    ADD CONSTRAINT product_slug_key UNIQUE (slug);
ALTER TABLE ONLY public.refunds
    ADD CONSTRAINT refunds_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.refunds
    ADD CONSTRAINT refunds_token_key UNIQUE (token);
ALTER TABLE ONLY public.staff
    ADD CONSTRAINT staff_email_key UNIQUE (email);
ALTER TABLE ONLY public.staff
    ADD CONSTRAINT staff_pkey PRIMARY KEY (id);
CREATE INDEX ix_order_items_order_id ON public.order_items USING btree (order_id);
CREATE INDEX ix_orders_created_at ON public.orders USING btree (created_at);
CREATE INDEX ix_payment_events_order_id ON public.payment_events USING btree (order_id);
CREATE INDEX ix_refunds_order_id ON public.refunds USING btree (order_id);
CREATE UNIQUE INDEX one_refund_in_flight_per_order ON public.refunds USING btree (order_id) WHERE ((state)::text = 'requested'::text);
ALTER TABLE ONLY public.order_items
    ADD CONSTRAINT order_items_order_id_fkey FOREIGN KEY (order_id) REFERENCES public.orders(id);
ALTER TABLE ONLY public.order_items
    ADD CONSTRAINT order_items_product_id_fkey FOREIGN KEY (product_id) REFERENCES public.product(id);
ALTER TABLE ONLY public.payment_events
    ADD CONSTRAINT payment_events_order_id_fkey FOREIGN KEY (order_id) REFERENCES public.orders(id);
ALTER TABLE ONLY public.refunds
    ADD CONSTRAINT refunds_order_id_fkey FOREIGN KEY (order_id) REFERENCES public.orders(id);

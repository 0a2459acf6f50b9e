-- The tables `flask init-db` made with create_all() before migrations (commit
-- fe082e5), read back from a SQLite database it made. See tests/test_migrations.py.
CREATE TABLE product (
	id INTEGER NOT NULL, 
	slug VARCHAR(64) NOT NULL, 
	name VARCHAR(100) NOT NULL, 
	description TEXT NOT NULL, 
	price_paisa INTEGER NOT NULL, 
	stock INTEGER NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (slug)
);
CREATE TABLE orders (
	id INTEGER NOT NULL, 
	purchase_order_id VARCHAR(32) NOT NULL, 
	status VARCHAR(32) NOT NULL, 
	customer_name VARCHAR(100) NOT NULL, 
	customer_email VARCHAR(254) NOT NULL, 
	customer_phone VARCHAR(10) NOT NULL, 
	total_paisa INTEGER NOT NULL, 
	created_at DATETIME NOT NULL, 
	checkout_token VARCHAR(32), 
	pidx VARCHAR(64), 
	payment_url VARCHAR(500), 
	expires_at VARCHAR(40), 
	transaction_id VARCHAR(64), 
	failure_reason TEXT, 
	PRIMARY KEY (id), 
	UNIQUE (purchase_order_id), 
	UNIQUE (checkout_token), 
	UNIQUE (pidx)
);
CREATE INDEX ix_orders_created_at ON orders (created_at);
CREATE TABLE staff (
	id INTEGER NOT NULL, 
	email VARCHAR(254) NOT NULL, 
	password_hash VARCHAR(255) NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (email)
);
CREATE TABLE order_items (
	id INTEGER NOT NULL, 
	order_id INTEGER NOT NULL, 
	product_id INTEGER NOT NULL, 
	name VARCHAR(100) NOT NULL, 
	unit_price_paisa INTEGER NOT NULL, 
	quantity INTEGER NOT NULL, 
	_sentinel INTEGER, 
	PRIMARY KEY (id), 
	FOREIGN KEY(order_id) REFERENCES orders (id), 
	FOREIGN KEY(product_id) REFERENCES product (id)
);
CREATE INDEX ix_order_items_order_id ON order_items (order_id);
CREATE TABLE payment_events (
	id INTEGER NOT NULL, 
	order_id INTEGER NOT NULL, 
	created_at DATETIME NOT NULL, 
	kind VARCHAR(40) NOT NULL, 
	data TEXT NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(order_id) REFERENCES orders (id)
);
CREATE INDEX ix_payment_events_order_id ON payment_events (order_id);
CREATE TABLE refunds (
	id INTEGER NOT NULL, 
	order_id INTEGER NOT NULL, 
	token VARCHAR(64) NOT NULL, 
	amount_paisa INTEGER NOT NULL, 
	staff_email VARCHAR(254) NOT NULL, 
	reason TEXT NOT NULL, 
	state VARCHAR(16) NOT NULL, 
	khalti_answer TEXT, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(order_id) REFERENCES orders (id), 
	UNIQUE (token)
);
CREATE UNIQUE INDEX one_refund_in_flight_per_order ON refunds (order_id) WHERE state = 'requested';
CREATE INDEX ix_refunds_order_id ON refunds (order_id);

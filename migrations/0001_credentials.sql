CREATE TABLE "credentials" (
	"id" text PRIMARY KEY NOT NULL,
	"user_id" text,
	"provider" text NOT NULL,
	"type" text NOT NULL,
	"title" text NOT NULL,
	"scopes" text[] DEFAULT '{}'::text[] NOT NULL,
	"username" text,
	"host" text,
	"status" text DEFAULT 'active' NOT NULL,
	"managed" boolean DEFAULT false NOT NULL,
	"system" boolean DEFAULT false NOT NULL,
	"metadata" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"access_token_expires_at" timestamp with time zone,
	"ciphertext" text NOT NULL,
	"data_key" text NOT NULL,
	"key_id" text NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_used_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "oauth_providers" (
	"id" text PRIMARY KEY NOT NULL,
	"builtin" boolean DEFAULT false NOT NULL,
	"name" text NOT NULL,
	"authorize_url" text,
	"token_url" text,
	"revoke_url" text,
	"userinfo_url" text,
	"issuer" text,
	"default_scopes" text[] DEFAULT '{}'::text[] NOT NULL,
	"scope_separator" text DEFAULT ' ' NOT NULL,
	"pkce" boolean DEFAULT true NOT NULL,
	"client_auth" text DEFAULT 'basic' NOT NULL,
	"authorize_params" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"refresh_invalidates_access_token" boolean DEFAULT false NOT NULL,
	"refresh_token_rotates" boolean DEFAULT false NOT NULL,
	"client_id" text NOT NULL,
	"ciphertext" text NOT NULL,
	"data_key" text NOT NULL,
	"key_id" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "credentials" ADD CONSTRAINT "credentials_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "credentials_user_order_idx" ON "credentials" USING btree ("user_id","created_at","id");--> statement-breakpoint
CREATE INDEX "credentials_system_idx" ON "credentials" USING btree ("system") WHERE "credentials"."system";--> statement-breakpoint
CREATE INDEX "credentials_key_id_idx" ON "credentials" USING btree ("key_id");--> statement-breakpoint
CREATE INDEX "oauth_providers_key_id_idx" ON "oauth_providers" USING btree ("key_id");
CREATE TABLE "jobs" (
	"id" text PRIMARY KEY NOT NULL,
	"user_id" text NOT NULL,
	"kind" text NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"payload" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"max_attempts" integer DEFAULT 8 NOT NULL,
	"next_attempt_at" timestamp with time zone DEFAULT now() NOT NULL,
	"claimed_by" text,
	"claimed_until" timestamp with time zone,
	"last_error" text,
	"finished_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "managed_provider_configs" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"provision_url" text NOT NULL,
	"deprovision_url" text NOT NULL,
	"enabled" boolean DEFAULT true NOT NULL,
	"ciphertext" text NOT NULL,
	"data_key" text NOT NULL,
	"key_id" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "managed_provisionings" (
	"user_id" text NOT NULL,
	"provider" text NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"client_id" text NOT NULL,
	"resources" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"last_error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "credentials" ADD COLUMN "token_issued_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "credentials" ADD COLUMN "refresh_failures" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "credentials" ADD COLUMN "refresh_retry_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "credentials" ADD COLUMN "refresh_error" text;--> statement-breakpoint
ALTER TABLE "managed_provisionings" ADD CONSTRAINT "managed_provisionings_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "jobs_due_idx" ON "jobs" USING btree ("next_attempt_at") WHERE "jobs"."status" in ('pending', 'running');--> statement-breakpoint
CREATE INDEX "jobs_user_idx" ON "jobs" USING btree ("user_id");--> statement-breakpoint
CREATE INDEX "jobs_status_order_idx" ON "jobs" USING btree ("status","created_at","id");--> statement-breakpoint
CREATE UNIQUE INDEX "managed_provisionings_pk" ON "managed_provisionings" USING btree ("user_id","provider");--> statement-breakpoint
CREATE INDEX "credentials_oauth_expiry_idx" ON "credentials" USING btree ("access_token_expires_at") WHERE "credentials"."type" = 'oauth2' and "credentials"."status" = 'active';--> statement-breakpoint
CREATE UNIQUE INDEX "credentials_managed_owner_idx" ON "credentials" USING btree ("user_id","provider") WHERE "credentials"."managed";
ALTER TABLE "oauth_providers" ADD COLUMN "api_base_url" text;--> statement-breakpoint
ALTER TABLE "oauth_providers" ADD COLUMN "api_key_placement" jsonb;
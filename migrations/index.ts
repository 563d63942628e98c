import { CreateScmTokenEntry1764000000000 } from "./1764000000000-CreateScmTokenEntry";

/** Every migration of the library, oldest first. Add them to your own DataSource's `migrations`. */
export const scmTokenServiceMigrations = [CreateScmTokenEntry1764000000000];

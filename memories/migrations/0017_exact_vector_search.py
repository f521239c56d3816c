"""Vector search without an approximate index: every search is one user's, ranked exactly (see
memories.models)."""


from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('chat', '0007_bound_tokens'),
        ('memories', '0016_lexical_in_postgres'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='episode',
            name='episode_embedding_hnsw',
        ),
        migrations.RemoveIndex(
            model_name='memory',
            name='memory_embedding_hnsw',
        ),
        migrations.AddIndex(
            model_name='episode',
            index=models.Index(fields=['user', 'kind'], name='episode_user_kind_idx'),
        ),
    ]
